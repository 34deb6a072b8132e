"""Janus's configuration for one start: config/janus/ rendered into a private directory.

Homeroom keeps the files in ``config/janus/`` (one transport, the VideoRoom plugin, everything
else disabled, no STUN server) with ``@NAME@`` placeholders; each start renders them with a
fresh API secret, the address and port the API listens on, and where ICE may gather.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import config as config_package

#: Where config/janus/ is, installed or in a checkout.
TEMPLATES = Path(config_package.__file__).resolve().parent / "janus"
#: The Debian package's plugins, transports, loggers and event handlers.
DEBIAN_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")


def new_api_secret() -> str:
    """A secret for one start of Janus: every API request carries it."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class JanusConfig:
    """What differs between two starts of Janus."""

    ws_ip: str
    ws_port: int
    api_secret: str = field(default_factory=new_api_secret, repr=False)
    #: Interfaces or address prefixes ICE gathers on (Janus's ``ice_enforce_list``); empty: all.
    ice_enforce: tuple[str, ...] = ()
    #: Interfaces or address prefixes ICE never gathers on (``ice_ignore_list``).
    ice_ignore: tuple[str, ...] = ("vmnet",)
    rtp_port_range: str = "20000-40000"
    debug_level: int = 3
    lib_folder: Path = DEBIAN_LIB

    @property
    def url(self) -> str:
        return f"ws://{self.ws_ip}:{self.ws_port}/janus"

    def render(self, directory: Path) -> Path:
        """Write the configuration files into ``directory`` (made private: the files hold the
        API secret) and return the path of janus.jcfg."""
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        values = self._values(directory)
        for template in sorted(TEMPLATES.glob("*.jcfg")):
            text = template.read_text()
            for name, value in values.items():
                text = text.replace(f"@{name}@", value)
            target = directory / template.name
            target.write_text(text)
            os.chmod(target, 0o600)
        return directory / "janus.jcfg"

    def _values(self, directory: Path) -> dict[str, str]:
        if self.ice_enforce:
            ice_list = f'ice_enforce_list = "{",".join(self.ice_enforce)}"'
        else:
            ice_list = f'ice_ignore_list = "{",".join(self.ice_ignore)}"'
        return {
            "CONFIGS_FOLDER": str(directory),
            "LIB_FOLDER": str(self.lib_folder),
            "DEBUG_LEVEL": str(self.debug_level),
            "API_SECRET": self.api_secret,
            "WS_IP": self.ws_ip,
            "WS_PORT": str(self.ws_port),
            "RTP_PORT_RANGE": self.rtp_port_range,
            "ICE_LIST": ice_list,
        }
