#!/usr/bin/env bash
# Installs the Debian packages omnifuse's demo and tests use, when missing: espeak-ng (speech for the
# AV-Digits demo), flite and festival with two voices (other speech engines, for the shifted AV-Digits tables), dataset-fashion-mnist (the Fashion demo), wordnet-base (the WordNet gloss table) and
# chromium (the web page's browser test).
# Quick and silent when all are there.
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v flite >/dev/null 2>&1 || missing+=(flite)
command -v text2wave >/dev/null 2>&1 || missing+=(festival)
[ -d /usr/share/festival/voices/english/ked_diphone ] || missing+=(festvox-kdlpc16k)
[ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || missing+=(festvox-us-slt-hts)
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
[ -f /usr/share/wordnet/data.noun ] || missing+=(wordnet-base)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "omnifuse: please install ${missing[*]} with your package manager (no apt-get here)" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "omnifuse: missing Debian packages ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "omnifuse: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
