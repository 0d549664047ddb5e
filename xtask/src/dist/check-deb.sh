#!/bin/sh
# The Debian package in a clean Debian 12 guest (`cargo xtask dist --check`),
# used as an operator would: run as root after each boot, one line per check,
#   DEBGUEST <check> PASS|FAIL <detail>
# Boot 1 installs the package and checks the service it starts: readiness,
# a leak in its JSON file and on its metrics port, logrotate, every
# capability of its bounding set, a stop that leaves nothing loaded. Boot 2
# checks that it started after boot, then removes and purges the package.
set -u

DEB=/root/zombie-trace.deb
JSON=/var/log/zombie-trace/zombie-trace.json
METRICS=http://127.0.0.1:9464/metrics
DROPIN=/run/systemd/system/zombie-trace.service.d
CAPS="CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"
FAILED=0

say() { echo "DEBGUEST $*"; }
pass() { say "$1 PASS $2"; }
fail() {
    say "$1 FAIL $2"
    FAILED=$((FAILED + 1))
}
check() { # NAME DETAIL COMMAND...: PASS if COMMAND succeeds
    name=$1 detail=$2
    shift 2
    if out=$("$@" 2>&1); then pass "$name" "$detail"; else fail "$name" "$detail: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
# How many of the tracer's programs the kernel holds (systemd has its own).
programs() { bpftool prog show 2>/dev/null | grep -cE 'name (sys_exit_wait|sched_process_)'; }
# Waits up to $1 s for `$2...` to succeed.
within() {
    limit=$1
    shift
    n=0
    while ! "$@" >/dev/null 2>&1; do
        n=$((n + 1))
        [ "$n" -le "$limit" ] || return 1
        sleep 1
    done
}
# A leak: a shell whose child exits while it sleeps on, never waiting.
# Owned by nobody, so that reading its /proc files needs both
# CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH. Its pid, the parent, is in $LEAKER.
leak() {
    setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'sleep 1 & exec sleep 60' &
    LEAKER=$!
}
unleak() {
    kill "$LEAKER" 2>/dev/null
    wait "$LEAKER" 2>/dev/null
}
# The zombie report of $LEAKER's child, from the JSON file.
report() { grep '"type":"zombie"' "$JSON" | grep "\"ppid\":$LEAKER[,}]"; }
# Starts the service with only the capabilities in $1.
start_with() {
    mkdir -p "$DROPIN"
    printf '[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=%s\n' "$1" >"$DROPIN/check.conf"
    systemctl daemon-reload
    # The failed starts count towards the unit's start limit.
    systemctl reset-failed zombie-trace
    systemctl restart zombie-trace
}

say kernel "$(uname -r)"

# The boot's number, from the harness (xtask/src/debguest.rs).
if [ "${DEBGUEST_BOOT:?}" = 1 ]; then
    check install "dpkg -i" dpkg -i "$DEB"
    check enabled "starts after boot" systemctl is-enabled --quiet zombie-trace
    check started "by the package, ready (Type=notify)" systemctl is-active --quiet zombie-trace
    check version "a static binary" sh -c '/usr/sbin/zombie-trace --version | grep -q "statically linked"'
    check man-page "man 8 zombie-trace" test -s /usr/share/man/man8/zombie-trace.8.gz
    check completions "bash, zsh, fish" test -s /usr/share/bash-completion/completions/zombie-trace \
        -a -s /usr/share/zsh/vendor-completions/_zombie-trace \
        -a -s /usr/share/fish/vendor_completions.d/zombie-trace.fish
    check ready-line "in $JSON" grep -q '"type":"ready"' "$JSON"
    say how "$(systemd-analyze security zombie-trace 2>/dev/null | tail -1)"
    check start "systemctl start, after a stop" sh -c '
        systemctl stop zombie-trace && systemctl start zombie-trace &&
        systemctl is-active --quiet zombie-trace'

    leak
    if within 60 report; then
        pass zombie-in-file "$(report | head -1 | cut -c1-200)"
    else
        fail zombie-in-file "no report of a child of $LEAKER in $JSON"
    fi
    if report | grep -q '"parent_syscall":"clock_nanosleep"'; then
        pass parent-details "the parent's syscall, read through the hardening"
    else
        fail parent-details "$(report | head -1 | cut -c1-300)"
    fi
    check metrics "$METRICS: the leaking parent" within 30 sh -c \
        "busybox wget -qO- $METRICS | grep -q 'zombie_trace_zombies{.*parent_comm=\"sleep\".*} 1'"
    unleak

    check logrotate "rotated, then written to the new file (SIGHUP)" sh -c "
        logrotate -f /etc/logrotate.d/zombie-trace && test -s $JSON.1 &&
        systemctl is-active --quiet zombie-trace"
    leak
    check new-file "a leak after the rotation" within 60 report
    unleak

    for cap in $CAPS; do
        others=$(echo "$CAPS" | tr ' ' '\n' | grep -vx "$cap" | tr '\n' ' ')
        case $cap in
        CAP_BPF | CAP_PERFMON)
            if start_with "$others" 2>/dev/null; then
                fail "needs-$cap" "started without it"
            else
                said=$(journalctl -u zombie-trace -n 30 -o cat | grep 'zombie-trace: error' | tail -1)
                pass "needs-$cap" "without it the start fails: $(echo "$said" | cut -c1-200)"
            fi
            ;;
        *)
            start_with "$others"
            leak
            if ! within 60 report; then
                fail "needs-$cap" "no report without it"
            elif report | grep -q '"parent_syscall":null'; then
                pass "needs-$cap" "without it the parent's syscall is unknown"
            else
                fail "needs-$cap" "the parent's syscall is read without it"
            fi
            unleak
            ;;
        esac
    done
    rm -rf "$DROPIN"
    systemctl daemon-reload
    systemctl reset-failed zombie-trace
    check restart "with the unit as shipped" systemctl restart zombie-trace

    loaded=$(programs)
    systemctl stop zombie-trace
    if [ "$(programs)" = 0 ] && [ "$loaded" -gt 0 ]; then
        pass stop "$loaded programs while running, none after systemctl stop"
    else
        fail stop "$loaded programs while running, $(programs) after systemctl stop"
    fi
    grep -c '"type":"ready"' "$JSON" >/root/ready-lines
    say REBOOT "$FAILED failed"
else
    check after-boot "active after the reboot" systemctl is-active --quiet zombie-trace
    check ready-after-boot "a new ready line since the reboot" sh -c \
        "test \$(grep -c '\"type\":\"ready\"' $JSON) -gt \$(cat /root/ready-lines)"
    check remove "dpkg -r" dpkg -r zombie-trace
    check removed "the service stopped and gone" sh -c '
        ! systemctl is-active --quiet zombie-trace &&
        ! test -e /lib/systemd/system/zombie-trace.service &&
        ! test -e /usr/sbin/zombie-trace'
    check nothing-loaded "no program of the tracer" test "$(programs)" = 0
    check conffiles-kept "until purge" test -e /etc/default/zombie-trace
    check purge "dpkg -P" dpkg -P zombie-trace
    check purged "its configuration and logs gone" sh -c '
        ! test -e /etc/default/zombie-trace && ! test -e /var/log/zombie-trace &&
        ! test -e /etc/systemd/system/multi-user.target.wants/zombie-trace.service &&
        ! test -L /etc/systemd/system/zombie-trace.service'
    say DONE "$FAILED failed"
fi
