"""The kernel's floor under a fan-out: one 400-byte send() to each of 500 loopback
TCP sockets (readers in a forked process); prints process CPU per send and its
system part.  python3 bench/floor/send_floor.py
"""
import os, socket, time, resource, sys
N, MSGS = 500, 200
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1024)
port = srv.getsockname()[1]
pid = os.fork()
if pid == 0:
    import selectors
    sel = selectors.DefaultSelector(); cs = []
    for _ in range(N):
        c = socket.create_connection(("127.0.0.1", port)); c.setblocking(False); sel.register(c, selectors.EVENT_READ); cs.append(c)
    got = 0
    while got < N * MSGS * 400:
        for k, _ in sel.select():
            got += len(k.fileobj.recv(65536))
    os._exit(0)
acc = []
for _ in range(N):
    s, _ = srv.accept(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); acc.append(s)
payload = b"x" * 400
r0 = resource.getrusage(resource.RUSAGE_SELF)
for m in range(MSGS):
    for s in acc: s.send(payload)
    time.sleep(0.002)
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(f"python send(): {cpu * 1e6 / (N * MSGS):.2f} µs per send (sys {(r1.ru_stime - r0.ru_stime) * 1e6 / (N * MSGS):.2f})")
os.waitpid(pid, 0)
