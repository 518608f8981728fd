#!/usr/bin/env bash
# Installs what Fornax's tests need on a Debian machine, once: the git
# client and git-http-backend (repositories served over HTTP) and
# Subversion (svnserve, svn). Re-running it when everything is present
# costs nothing. Heavy tools that later suites need (Kubernetes binaries,
# kaniko) will be built into a cache outside the checkout, never into it.
set -euo pipefail

need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/lib/git-core/git-http-backend ] || need+=(git)
command -v svn >/dev/null || need+=(subversion)
command -v svnserve >/dev/null || need+=(subversion)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
echo "test-deps: git $(git --version | cut -d' ' -f3), svn $(svn --version --quiet)"
