#!/bin/sh
# earshotd runs from the virtualenv that the earshot package's postinst builds.
VENV=/opt/earshot/venv
if [ ! -x "$VENV/bin/earshotd" ]; then
    echo "earshotd: $VENV/bin/earshotd is missing; finish the install with: dpkg --configure -a" >&2
    echo "          (or reinstall: apt-get install --reinstall earshot)" >&2
    exit 1
fi
exec "$VENV/bin/earshotd" "$@"
