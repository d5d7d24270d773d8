"""Processes that stand in for services no registry provides, for the local stack and CI only.

Nothing here is Pulumi code: the local renderer runs a stand-in as one more
supervised process (``python -m infra.standins.<service>``), and cloud stacks
run the real service instead.
"""
