"""A group member for test_failover.py (not a test itself):

    fo_member.py NAME ADDRESS

A Python node that listens on ADDRESS, answers "@who" with NAME, prints
"ready" and serves until it is killed."""

import sys

import skc


def main():
    name, addr = sys.argv[1], sys.argv[2]
    with skc.Node(name) as node:
        node.open(addr)
        node.register("who", lambda *args: name)
        print("ready", flush=True)
        node.run()


if __name__ == "__main__":
    main()
