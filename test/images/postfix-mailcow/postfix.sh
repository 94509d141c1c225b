#!/bin/sh
# What Mailcow's postfix.sh does for the files the installer touches: custom_transport.pcre
# is created when missing and reset to root:postfix 0640 at every start; myhostname is
# MAILCOW_HOSTNAME (the authserv-id of Rspamd's Authentication-Results).
set -eu
table=/opt/postfix/conf/custom_transport.pcre
touch "$table"
chown root:postfix "$table"
chmod 640 "$table"
postconf -e "myhostname = ${MAILCOW_HOSTNAME:-mail.example.com}"
exec postfix start-fg
