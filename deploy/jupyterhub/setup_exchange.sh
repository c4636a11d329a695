#!/bin/sh
# Create nbgrader's exchange folder with the permissions nbgrader documents: everyone may create
# entries in it (students submit, the instructor releases); nbgrader then sets each course's
# outbound/ (read-only for students) and inbound/ (write-only: students cannot list others'
# submissions) itself. The sticky bit (1777, as /tmp) is our addition: without it any student
# could rename the instructor's course folder and put a fake one in its place.
# Run once, as root:  sh setup_exchange.sh [/srv/nbgrader/exchange]
set -eu
EXCHANGE="${1:-${AECOURSE_EXCHANGE_ROOT:-/srv/nbgrader/exchange}}"
mkdir -p "$EXCHANGE"
chmod 1777 "$EXCHANGE"
echo "nbgrader exchange ready: $EXCHANGE (set the same c.Exchange.root in nbgrader_config.py)"
