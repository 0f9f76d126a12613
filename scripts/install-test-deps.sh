#!/usr/bin/env bash
# The Debian 12 packages the build and the tests drive, installed as root; the README's test block
# runs this first, and .ci/run runs that block. A test that finds one of these tools missing fails
# under CI=true, naming the package (test/helpers/require-tool.ts).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-test-deps: run as root (apt-get install)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive

# Installing openssh-server would start a system sshd on port 22 where nothing forbids it; the tests
# never use it (they start their own, fixtures.md §4), so forbid service starts for this install.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
fi
trap '[ "$added_policy" = 1 ] && rm -f "$policy"' EXIT

apt-get update
# python3, make and g++ build the native sqlite3 module; procps gives the tests `ps`. The rest are
# the real tools the step tests drive in isolated roots (fixtures.md): dpkg-dev builds and indexes
# .debs, aptitude is BlueMind's front end, dnf/rpm/createrepo-c the RedHat side ("yum"; rpm also
# brings rpmbuild for the fake RPMs; dnf-plugins-core gives `dnf download`, which keeps the
# installed RPMs for the way back), libcap2-bin setcap/getcap, git the git-deployed apps, iproute2
# the network namespaces that stand for hosts in the end-to-end rollouts (ip, ss), openssh-server
# the real sshd that SSH enrollment talks to (and openssh-client's ssh-keygen for its keys), systemd
# for `systemd-analyze verify` of the units in packaging/ (it is not started: PID 1 stays whatever
# the machine has), strace to check that the controller's syscalls all pass its unit's
# SystemCallFilter. The chaos suite partitions hosts with iptables DROP inside their namespaces and
# skews an agent's clock by preloading libfaketime. dpkg-repack rebuilds an installed package from
# its files: the apt step's last source for the previous version it keeps (the way back). The
# ownCloud recipe downloads its release with curl and extracts a .tar.bz2 (bzip2). apt, dpkg, mount,
# util-linux (unshare, prlimit) and tar come with every Debian (essential or required).
apt-get install -y --no-install-recommends python3 make g++ procps \
  dpkg-dev dpkg-repack aptitude dnf rpm createrepo-c libcap2-bin git iproute2 \
  openssh-server openssh-client systemd strace iptables libfaketime curl bzip2
