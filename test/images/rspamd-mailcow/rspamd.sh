#!/bin/sh
# Mailcow's rspamd entrypoint in what matters here: it writes into the mounted local.d before
# starting (Mailcow: redis.conf, external_services.conf; here: no fuzzy servers, which would be
# looked up on the internet), then runs rspamd in the foreground as PID 1.
set -eu
[ -e /etc/rspamd/local.d/fuzzy_check.conf ] || echo 'enabled = false;' >/etc/rspamd/local.d/fuzzy_check.conf
mkdir -p /var/lib/rspamd /run/rspamd
chown _rspamd:_rspamd /var/lib/rspamd /run/rspamd
exec /usr/bin/rspamd -f -u _rspamd -g _rspamd
