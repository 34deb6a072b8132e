#!/bin/sh
# Starts Janus from Homeroom's config/janus/ templates: renders their @NAME@ placeholders from
# the environment into a private directory, then runs Janus from it in the foreground.
# The janus service of docker-compose.yml runs this (deploy/janus.Dockerfile), and
# tests/test_native_services.py runs the same script on this machine.
#
#   JANUS_API_SECRET      required: every API request carries it (the app nodes know it)
#   JANUS_TEMPLATES       the config/janus/ directory (default /etc/homeroom/janus)
#   JANUS_CONF_DIR        where the rendered files go (default /tmp/janus-conf, mode 0700)
#   JANUS_WS_IP/PORT      where the API listens (default 0.0.0.0:8188, the compose network)
#   JANUS_RTP_PORT_RANGE  media ports (default 20000-20199; publish the same range)
#   JANUS_PUBLIC_IP       the address announced in ICE candidates (nat_1_1_mapping), if set
#   JANUS_ICE_ENFORCE     interfaces or address prefixes ICE may gather on; unset: all but vmnet
#   JANUS_LIB_FOLDER      the plugins' folder (default: the Debian package's)
#   JANUS_DEBUG_LEVEL     0-7 (default 4)
set -eu
: "${JANUS_API_SECRET:?JANUS_API_SECRET must be set}"
templates=${JANUS_TEMPLATES:-/etc/homeroom/janus}
conf=${JANUS_CONF_DIR:-/tmp/janus-conf}
lib=${JANUS_LIB_FOLDER:-/usr/lib/$(uname -m)-linux-gnu/janus}

if [ -n "${JANUS_ICE_ENFORCE:-}" ]; then
	ice_list="ice_enforce_list = \"$JANUS_ICE_ENFORCE\""
else
	ice_list='ice_ignore_list = "vmnet"'
fi
if [ -n "${JANUS_PUBLIC_IP:-}" ]; then
	ice_list="$ice_list\\n\\tnat_1_1_mapping = \"$JANUS_PUBLIC_IP\""
fi

# A value goes into sed's replacement: escape what sed would read as syntax there.
quote() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

umask 077
mkdir -p "$conf"
chmod 700 "$conf"
for template in "$templates"/*.jcfg; do
	sed -e "s|@CONFIGS_FOLDER@|$(quote "$conf")|g" \
		-e "s|@LIB_FOLDER@|$(quote "$lib")|g" \
		-e "s|@DEBUG_LEVEL@|$(quote "${JANUS_DEBUG_LEVEL:-4}")|g" \
		-e "s|@API_SECRET@|$(quote "$JANUS_API_SECRET")|g" \
		-e "s|@WS_IP@|$(quote "${JANUS_WS_IP:-0.0.0.0}")|g" \
		-e "s|@WS_PORT@|$(quote "${JANUS_WS_PORT:-8188}")|g" \
		-e "s|@RTP_PORT_RANGE@|$(quote "${JANUS_RTP_PORT_RANGE:-20000-20199}")|g" \
		-e "s|@ICE_LIST@|$ice_list|g" \
		"$template" >"$conf/$(basename "$template")"
done
exec janus -C "$conf/janus.jcfg" -F "$conf" -N
