"""Runs a command the way systemd runs a socket-activated service (sd_listen_fds(3)):
listening sockets passed from descriptor 3 on, with LISTEN_PID, LISTEN_FDS and
LISTEN_FDNAMES set. Prints the sockets' ports on one line, then becomes the command
(same process, so LISTEN_PID is its PID).

usage: socket_activate.py SOCKET[:SOCKET...] COMMAND [ARGS...]
  SOCKET is NAME (a free port), NAME@PORT, or @PORT (no name)
"""
import fcntl
import os
import socket
import sys

specs = [spec.partition("@") for spec in sys.argv[1].split(":")]
names = [name for name, _, _ in specs]
command = sys.argv[2:]
sockets = []
for _, _, port in specs:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port or 0)))
    s.listen(128)
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets), flush=True)
# Copies out of the way first, so that moving one to 3, 4, ... cannot clobber another.
copies = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in sockets]
for i, fd in enumerate(copies):
    os.dup2(fd, 3 + i, inheritable=True)
env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(names)),
           LISTEN_FDNAMES=":".join(names))
os.execvpe(command[0], command, env)
