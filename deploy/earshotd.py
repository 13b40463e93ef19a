#!/usr/bin/python3 -I
"""earshotd from the earshot package: the system Python 3.11 with the package's own wheels.

-I: no PYTHONPATH, no user site-packages, no current folder, so what runs is what the package
carries (/usr/lib/earshot/site-packages, first) plus Debian's python3-pyaudio and
python3-systemd from /usr/lib/python3/dist-packages.
"""
import sys

SITE = "/usr/lib/earshot/site-packages"
if sys.version_info[:2] != (3, 11):
    sys.exit(f"earshotd: {sys.executable} is Python {sys.version.split()[0]}; the wheels in "
             f"{SITE} are built for 3.11 (Debian 12 / Raspberry Pi OS bookworm)")
sys.path.insert(0, SITE)

from daemon.__main__ import main  # noqa: E402

sys.exit(main())
