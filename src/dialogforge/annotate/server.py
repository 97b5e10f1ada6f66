"""Running the web app: loopback unless told, Host names allowed, the admin password shown once."""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .project import Project

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    names = list(LOOPBACK_NAMES)
    if host not in ("0.0.0.0", "::") and host not in names:
        names.append(host)
    return names + [h for h in extra if h not in names]


def warnings_for(host: str, extra: list[str]) -> list[str]:
    out = []
    if not is_loopback(host):
        out.append(f"serving on {host}: anyone who can reach this address sees the log-in page. Use HTTPS in "
                   "front of it (a reverse proxy) and pass --secure-cookies, or keep the default 127.0.0.1.")
        if host in ("0.0.0.0", "::") and not extra:
            out.append("no --allowed-host given: requests that name this machine by anything but localhost are "
                       "refused (DNS-rebinding guard); add --allowed-host NAME for the name people use")
    return out


def check_listen(host: str, port: int) -> None:
    """Refuse an address the server could not listen on (port in use, unknown host) before the project opens."""
    import socket

    from ..core.errors import DialogforgeError
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            s.bind(addr)
    except OSError as e:
        raise DialogforgeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def serve(project: Project, host: str, port: int, extra_hosts: list[str], secure_cookies: bool,
          say: Callable[[str], None]) -> None:
    import uvicorn

    from .app import create_app
    app = create_app(project, allowed_hosts=allowed_hosts(host, extra_hosts), secure_cookies=secure_cookies)
    shown = f"[{host}]" if ":" in host else host
    say(f"annotation server on http://{shown}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
