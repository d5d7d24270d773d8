// A loopback OpenID Provider for the gateway's OAuth tests: zitadel/oidc's example OP (in-memory
// storage, RS256 keys, PKCE S256, username/password login form) with its issuer on 127.0.0.1,
// two confidential web clients whose redirect URIs the test names, and the users the test writes to a
// JSON file (the library's StoreFromFile), so a test can have a user whose email is not verified. Built by
// tests/support/oidc_provider.py from the Go module proxy; nothing here is fetched at run time.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

func main() {
	port := flag.Int("port", 0, "loopback port to serve on")
	redirects := flag.String("redirect-uris", "", "comma-separated redirect URIs registered for both clients")
	usersFile := flag.String("users", "", "JSON file of the OP's users (storage.User by id)")
	flag.Parse()
	// from the environment, not argv: a command line is visible to every local user
	secret := os.Getenv("OIDC_OP_CLIENT_SECRET")
	if *port == 0 || *redirects == "" || *usersFile == "" || secret == "" {
		fmt.Fprintln(os.Stderr, "usage: OIDC_OP_CLIENT_SECRET=S oidc-op -port N -redirect-uris URI[,URI] -users FILE")
		os.Exit(2)
	}
	users, err := storage.StoreFromFile(*usersFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%d/", *port)
	uris := strings.Split(*redirects, ",")
	// two clients: the gateway's, and another one whose ID tokens carry a different audience
	storage.RegisterClients(
		storage.WebClient("web", secret, uris...),
		storage.WebClient("other", secret, uris...),
	)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	router := exampleop.SetupServer(issuer, storage.NewStorage(users), logger, false)
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "oidc-op listening on %s\n", issuer)
	if err := http.Serve(listener, router); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
