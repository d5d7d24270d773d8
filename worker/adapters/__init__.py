"""Runtime adapters: the only modules that import sqlite3, httpx or the Workers FFI."""
