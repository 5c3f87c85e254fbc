#!/usr/bin/env bash
# Run the whole test suite: make sure the broker the integration tests share is up, then pytest.
# Tests that stop or break a broker start their own Mosquitto on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "test: no MQTT broker on 127.0.0.1:1883, starting one"
  mkdir -p var/test-broker
  cat > var/test-broker/mosquitto.conf <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence false
log_dest file $(pwd)/var/test-broker/mosquitto.log
CONF
  mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  "$mosquitto" -d -c var/test-broker/mosquitto.conf
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
fi
# The central simulator's PostgreSQL tests use 127.0.0.1:5432; they skip themselves when nothing listens there.
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
  echo "test: no PostgreSQL on 127.0.0.1:5432, starting the cluster"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)  # no cluster: nothing to start
  if [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1; then
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 0.1; done
  else
    echo "test: could not start PostgreSQL; its tests will be skipped"
  fi
fi
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
