"""Real peers for the tests (issue 19): what a connecting client meets.

- `smtp.SmtpRecorder`: an SMTP server on loopback that records each peer
  address and EHLO / HELO name, and each message;
- `socks5.Socks5Server`: a SOCKS5 server written from kumod's side of the
  exchange (BIND of the source address, then CONNECT), with optional RFC 1929
  authentication;
- `haproxy.HAProxy`: Debian's haproxy with the configuration of KumoMTA's
  proxy guide (root only: `haproxy.unavailable_reason()` says why not).

Each is usable in-process by pytest tests (`from peers.smtp import
SmtpRecorder`, tests/ being on sys.path) and, for the other languages' tests,
as a process started from the repository's root, which prints its port as its
first line: `.venv/bin/python -m tests.peers.smtp --port-file F` (likewise
`tests.peers.socks5`, `tests.peers.haproxy`); see each module.
"""
