#!/usr/bin/env bash
# Scans container images with Qualys QScanner, one after the other, and uploads per-image results to Blob.
# The contract (every environment variable, the results layout, exit codes) is in docs/scanner.md.
# Never add `set -x`: the environment holds secrets.
set -euo pipefail
shopt -s nullglob globstar
export LC_ALL=C
umask 077

readonly EXIT_SOME_FAILED=1        # at least one image ended in error or timeout, or an upload failed
readonly EXIT_INVALID_INPUT=2      # bad configuration or image reference: nothing was run or uploaded
readonly EXIT_SCANNER_UNAVAILABLE=3 # QScanner could not be found, downloaded or verified
readonly SETUP_FAILED_EXIT_CODE=-1  # exit_code recorded in status.json when QScanner never ran
readonly TIMEOUT_EXIT_CODE=124      # what timeout(1) returns after TERM
readonly KILLED_EXIT_CODE=137       # what timeout(1) returns after the KILL escalation
readonly BLOB_API_VERSION='2021-08-06'
readonly REDACTED='[REDACTED]'
readonly MAX_LOG_BYTES=4194304
readonly MAX_REF_LENGTH=1024
readonly SCAN_MODES=' get-report scan-only inventory-only evaluate-policy '
readonly OFFICIAL_DOWNLOAD_BASE='https://www.qualys.com/qscanner/download'

# The reference grammar of distribution/reference (as core/images.py), as an allow-list.
readonly RE_DOMAIN_COMPONENT='([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])'
readonly RE_DOMAIN="(${RE_DOMAIN_COMPONENT}(\\.${RE_DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(:[0-9]+)?"
readonly RE_PATH_COMPONENT='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*'
readonly RE_TAG=':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
readonly RE_DIGEST='@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
readonly RE_IMAGE_REF="^(${RE_DOMAIN}/)?${RE_PATH_COMPONENT}(/${RE_PATH_COMPONENT})*(${RE_TAG})?(${RE_DIGEST})?\$"
readonly RE_SHA256_DIGEST='sha256:[0-9a-f]{64}'
readonly RE_DOWNLOAD_URL='^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+=,/-]*)?$'
readonly RE_CONTAINER_URL='^https?://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~%/-]+$'
readonly RE_SAS_QUERY='^[A-Za-z0-9._~%/+=:&-]+$'

log() { printf '[qscan] %s\n' "$*"; }
fail_input() { printf '[qscan] invalid input: %s\n' "$*" >&2; exit "$EXIT_INVALID_INPUT"; }
utc_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# ---------------------------------------------------------------- input validation (before anything runs)
IMAGES=()
read_images() {
    local raw=${SCAN_IMAGES:-} line n
    [[ -n ${raw//[[:space:]]/} ]] || fail_input "SCAN_IMAGES is empty"
    while [[ $raw == *$'\n' ]]; do raw=${raw%$'\n'}; done # trailing newlines only; blank lines inside are refused
    mapfile -t IMAGES <<<"$raw"
    for n in "${!IMAGES[@]}"; do
        line=${IMAGES[$n]}
        if ((${#line} > MAX_REF_LENGTH)) || [[ ! $line =~ $RE_IMAGE_REF ]]; then
            fail_input "SCAN_IMAGES line $((n + 1)) is not a valid image reference; nothing was scanned"
        fi
    done
}

validate_config() {
    [[ ${QUALYS_POD:-} =~ ^[A-Z][A-Z0-9]{1,7}$ ]] || fail_input "QUALYS_POD must look like US2 or EU1"
    SCAN_TYPES=${SCAN_TYPES:-os,sca,secret}
    [[ $SCAN_TYPES =~ ^[a-z]+(,[a-z]+)*$ ]] || fail_input "SCAN_TYPES must be a comma-separated list like os,sca,secret"
    QSCANNER_MODE=${QSCANNER_MODE:-get-report}
    [[ $QSCANNER_MODE =~ ^[a-z-]+$ && $SCAN_MODES == *" $QSCANNER_MODE "* ]] || fail_input "QSCANNER_MODE must be one of:$SCAN_MODES"
    POLICY_TAGS=${POLICY_TAGS:-}
    if [[ -n $POLICY_TAGS && ! $POLICY_TAGS =~ ^[^-[:cntrl:]][^[:cntrl:]]*$ ]]; then
        fail_input "POLICY_TAGS must not start with '-' or hold control characters"
    fi
    if [[ $QSCANNER_MODE != inventory-only && -z ${QUALYS_ACCESS_TOKEN:-} ]] &&
        [[ -z ${QUALYS_CLIENT_ID:-} || -z ${QUALYS_CLIENT_SECRET:-} ]]; then
        fail_input "set QUALYS_ACCESS_TOKEN, or QUALYS_CLIENT_ID and QUALYS_CLIENT_SECRET"
    fi
    SCAN_TIMEOUT_PER_IMAGE=${SCAN_TIMEOUT_PER_IMAGE:-600}
    [[ $SCAN_TIMEOUT_PER_IMAGE =~ ^[1-9][0-9]{0,5}$ ]] || fail_input "SCAN_TIMEOUT_PER_IMAGE must be whole seconds"
    SCAN_KILL_AFTER=${SCAN_KILL_AFTER:-10}
    [[ $SCAN_KILL_AFTER =~ ^[1-9][0-9]{0,3}$ ]] || fail_input "SCAN_KILL_AFTER must be whole seconds"
    QSCANNER_VERSION=${QSCANNER_VERSION:-}
    if [[ -n $QSCANNER_VERSION && ! $QSCANNER_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+)?$ ]]; then
        fail_input "QSCANNER_VERSION must look like 4.8.0-2"
    fi
    QSCANNER_SHA256=${QSCANNER_SHA256:-}
    [[ -z $QSCANNER_SHA256 || $QSCANNER_SHA256 =~ ^[0-9a-fA-F]{64}$ ]] || fail_input "QSCANNER_SHA256 must be 64 hex digits"
    QSCANNER_DOWNLOAD_URL=${QSCANNER_DOWNLOAD_URL:-}
    if [[ -n $QSCANNER_DOWNLOAD_URL && ! $QSCANNER_DOWNLOAD_URL =~ $RE_DOWNLOAD_URL ]]; then
        fail_input "QSCANNER_DOWNLOAD_URL must be a plain http(s) URL without query"
    fi
    RESULTS_PREFIX=${RESULTS_PREFIX:-}
    [[ $RESULTS_PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$ ]] ||
        fail_input "RESULTS_PREFIX must be a blob path like scan-0123abcd"
    # The SAS lives only in shell variables from here on: no child process (QScanner included) inherits it.
    SAS_URL=${RESULTS_SAS_URL:-}
    unset RESULTS_SAS_URL
    [[ $SAS_URL == *'?'* ]] || fail_input "RESULTS_SAS_URL must be a container URL with a SAS query"
    RESULTS_BASE=${SAS_URL%%\?*}
    RESULTS_QUERY=${SAS_URL#*\?}
    [[ $RESULTS_BASE =~ $RE_CONTAINER_URL ]] || fail_input "RESULTS_SAS_URL has an invalid base"
    [[ $RESULTS_QUERY =~ $RE_SAS_QUERY ]] || fail_input "RESULTS_SAS_URL has an invalid SAS query"
}

# ---------------------------------------------------------------- secret hygiene
SECRETS=()
percent_decode() { printf '%b' "${1//%/\\x}"; }
collect_secrets() {
    local name sig
    for name in QUALYS_ACCESS_TOKEN QUALYS_CLIENT_SECRET QUALYS_CLIENT_ID QSCANNER_REGISTRY_PASSWORD \
        QSCANNER_REGISTRY_TOKEN AZURE_CLIENT_SECRET; do
        if [[ -n ${!name:-} ]]; then SECRETS+=("${!name}"); fi
    done
    SECRETS+=("$SAS_URL" "$RESULTS_QUERY")
    if [[ $RESULTS_QUERY =~ (^|&)sig=([^&]+) ]]; then
        sig=${BASH_REMATCH[2]}
        SECRETS+=("$sig" "$(percent_decode "$sig")")
    fi
}

scrub() { # stdin -> stdout with every known secret replaced
    local text secret
    text=$(tr -d '\000')
    for secret in "${SECRETS[@]}"; do
        if [[ -n $secret ]]; then text=${text//"$secret"/$REDACTED}; fi
    done
    printf '%s\n' "$text"
}

json_string() { # a JSON string literal for $1
    local s=$1 out='' c n
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    if [[ $s =~ [[:cntrl:]] ]]; then
        for ((n = 0; n < ${#s}; n++)); do
            c=${s:n:1}
            if [[ $c =~ [[:cntrl:]] ]]; then out+=$(printf '\\u%04x' "'$c"); else out+=$c; fi
        done
        s=$out
    fi
    printf '"%s"' "$s"
}

curl_config_value() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }

# ---------------------------------------------------------------- uploads (SAS passed to curl on stdin, never argv)
UPLOAD_FAILED=0
upload_blob() { # index, local file, blob file name, content type
    local index=$1 src=$2 name=$3 content_type=$4 err
    err=$(
        {
            printf 'url = %s\n' "$(curl_config_value "${RESULTS_BASE}/${RESULTS_PREFIX}/${index}/${name}?${RESULTS_QUERY}")"
            printf 'upload-file = %s\n' "$(curl_config_value "$src")"
            printf 'header = "x-ms-blob-type: BlockBlob"\n'
            printf 'header = "x-ms-version: %s"\n' "$BLOB_API_VERSION"
            printf 'header = "Content-Type: %s"\n' "$content_type"
        } | curl --config - --silent --show-error --fail --retry 3 --retry-delay 2 --max-time 300 \
            --output /dev/null 2>&1
    ) || {
        UPLOAD_FAILED=1
        printf '[qscan] upload of %s/%s failed: %s\n' "$index" "$name" "$(printf '%s' "$err" | scrub)" >&2
    }
}

write_status() { # file index image exit_code result started finished digest detail
    local file=$1 index=$2 image=$3 code=$4 result=$5 started=$6 finished=$7 digest=$8 detail=$9
    {
        printf '{"image": %s, "index": %d, "exit_code": %d, "result": %s' \
            "$(json_string "$image")" "$index" "$code" "$(json_string "$result")"
        printf ', "started_at": %s, "finished_at": %s' "$(json_string "$started")" "$(json_string "$finished")"
        if [[ -n $digest ]]; then printf ', "digest": %s' "$(json_string "$digest")"; fi
        if [[ -n $detail ]]; then printf ', "detail": %s' "$(json_string "$detail")"; fi
        printf '}\n'
    } >"$file"
}

# ---------------------------------------------------------------- getting QScanner
QSCANNER_BIN=''
SETUP_ERROR=''
default_download_url() { # UNCONFIRMED layout: see docs/scanner.md
    local arch
    case $(uname -m) in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) return 1 ;;
    esac
    [[ -n $QSCANNER_VERSION ]] || return 1
    printf '%s/%s/qscanner_%s_linux_%s.tar.gz' "$OFFICIAL_DOWNLOAD_BASE" "$QSCANNER_VERSION" "$QSCANNER_VERSION" "$arch"
}

fetch() { # url, destination
    curl --silent --show-error --fail --location --proto '=https,http' --proto-redir '=https' \
        --retry 3 --retry-delay 2 --max-time 600 --output "$2" "$1"
}

ensure_tool() { # Azure Linux base images lack tar (and maybe gzip): install with tdnf when that is possible
    command -v "$1" >/dev/null && return 0
    if command -v tdnf >/dev/null; then
        log "$1 is missing; installing it with tdnf"
        tdnf install -y -q "$1" >/dev/null 2>&1 || true
    fi
    command -v "$1" >/dev/null || { SETUP_ERROR="$1 is needed to unpack the QScanner download"; return 1; }
}

magic_of() { od -An -tx1 -N4 -- "$1" | tr -d ' \n'; }
is_tar() { [[ $(od -An -c -j257 -N5 -- "$1" | tr -d ' \n') == ustar ]]; }

unpack_qscanner() { # artifact, directory; sets QSCANNER_BIN or SETUP_ERROR
    local artifact=$1 dir=$2 candidate
    if [[ $(magic_of "$artifact") == 1f8b* ]]; then
        ensure_tool gzip || return 1
        gzip -dc -- "$artifact" >"$dir/artifact.unpacked" || { SETUP_ERROR='the QScanner download is not valid gzip'; return 1; }
        artifact=$dir/artifact.unpacked
    fi
    if is_tar "$artifact"; then
        ensure_tool tar || return 1
        mkdir -p "$dir/x"
        tar --no-same-owner -xf "$artifact" -C "$dir/x" || { SETUP_ERROR='the QScanner archive could not be unpacked'; return 1; }
        for candidate in "$dir"/x/**/qscanner; do
            if [[ -f $candidate ]]; then QSCANNER_BIN=$candidate; return 0; fi
        done
        SETUP_ERROR='the QScanner archive holds no qscanner file'
        return 1
    fi
    QSCANNER_BIN=$artifact # neither gzip nor tar: the executable itself (verified by its SHA256 already)
}

download_qscanner() { # sets QSCANNER_BIN or SETUP_ERROR
    local url expected actual dir=$WORK_DIR/download
    mkdir -p "$dir"
    url=${QSCANNER_DOWNLOAD_URL:-$(default_download_url || true)}
    [[ -n $url ]] || { SETUP_ERROR='set QSCANNER_DOWNLOAD_URL or QSCANNER_VERSION'; return 1; }
    log "qscanner is not on PATH; downloading $url"
    fetch "$url" "$dir/artifact" || { SETUP_ERROR="download of QScanner failed"; return 1; }
    expected=$QSCANNER_SHA256
    if [[ -z $expected ]]; then
        fetch "$url.sha256" "$dir/artifact.sha256" || { SETUP_ERROR='download of the QScanner checksum failed'; return 1; }
        read -r expected _ <"$dir/artifact.sha256" || true
    fi
    [[ ${expected:-} =~ ^[0-9a-fA-F]{64}$ ]] || { SETUP_ERROR='the QScanner checksum is not a SHA256'; return 1; }
    read -r actual _ < <(sha256sum -- "$dir/artifact")
    if [[ ${actual,,} != "${expected,,}" ]]; then
        SETUP_ERROR='QScanner checksum mismatch: the download was refused'
        return 1
    fi
    unpack_qscanner "$dir/artifact" "$dir" || return 1
    chmod 0700 "$QSCANNER_BIN"
    log "QScanner downloaded and its SHA256 verified"
}

resolve_qscanner() {
    if QSCANNER_BIN=$(command -v qscanner); then
        log "using qscanner from PATH"
        return 0
    fi
    download_qscanner
}

# ---------------------------------------------------------------- scanning
run_qscanner() { # reference, output dir, log file; the one place that knows QScanner's command line
    local ref=$1 out=$2 log_file=$3
    local -a args=(--pod "$QUALYS_POD" --scan-types "$SCAN_TYPES" --mode "$QSCANNER_MODE")
    if [[ $QSCANNER_MODE == evaluate-policy && -n $POLICY_TAGS ]]; then args+=(--policy-tags "$POLICY_TAGS"); fi
    args+=(--output-dir "$out" --cache-dir "$WORK_DIR/cache" --report-format json image "$ref")
    HOME=$SCAN_HOME TMPDIR=$WORK_DIR/tmp \
        timeout --kill-after="$SCAN_KILL_AFTER" "$SCAN_TIMEOUT_PER_IMAGE" "$QSCANNER_BIN" "${args[@]}" \
        >"$log_file" 2>&1 </dev/null
}

result_for() { # exit code, elapsed seconds
    case $1 in
        0) printf ok ;;
        42) printf deny ;;
        43) printf audit ;;
        "$TIMEOUT_EXIT_CODE") printf timeout ;;
        "$KILLED_EXIT_CODE") if (($2 >= SCAN_TIMEOUT_PER_IMAGE)); then printf timeout; else printf error; fi ;;
        *) printf error ;;
    esac
}

digest_from_report() { # prints image.digest or imageDigest when the report holds one
    local content re
    content=$(tr -d '\000' <"$1")
    re="\"image\"[[:space:]]*:[[:space:]]*\\{[^{}]*\"digest\"[[:space:]]*:[[:space:]]*\"(${RE_SHA256_DIGEST})\""
    if [[ $content =~ $re ]]; then printf '%s' "${BASH_REMATCH[1]}"; return 0; fi
    re="\"imageDigest\"[[:space:]]*:[[:space:]]*\"(${RE_SHA256_DIGEST})\""
    if [[ $content =~ $re ]]; then printf '%s' "${BASH_REMATCH[1]}"; fi
    return 0
}

prepare_log() { # raw log -> scrubbed, size-capped scan.log
    local raw=$1 dest=$2 size
    size=$(wc -c <"$raw")
    {
        if ((size > MAX_LOG_BYTES)); then
            printf '[qscan] log truncated: last %d of %d bytes\n' "$MAX_LOG_BYTES" "$size"
            tail -c "$MAX_LOG_BYTES" -- "$raw"
        else
            cat -- "$raw"
        fi
    } | scrub >"$dest"
}

FAILED=0
scan_image() { # index, reference
    local index=$1 ref=$2 dir=$WORK_DIR/images/$1 started finished t0 code=0 result report digest=''
    mkdir -p "$dir/out"
    started=$(utc_now)
    t0=$(date +%s)
    log "image $index: scanning $ref"
    run_qscanner "$ref" "$dir/out" "$dir/raw.log" || code=$?
    finished=$(utc_now)
    result=$(result_for "$code" "$(($(date +%s) - t0))")
    report=''
    for report in "$dir"/out/**/*-Report.json; do break; done
    if [[ -n $report && -f $report ]]; then
        digest=$(digest_from_report "$report")
        upload_blob "$index" "$report" report.json application/json
    fi
    prepare_log "$dir/raw.log" "$dir/scan.log"
    upload_blob "$index" "$dir/scan.log" scan.log 'text/plain; charset=utf-8'
    write_status "$dir/status.json" "$index" "$ref" "$code" "$result" "$started" "$finished" "$digest" ''
    upload_blob "$index" "$dir/status.json" status.json application/json
    log "image $index: $result (exit $code)"
    case $result in
        ok | deny | audit) ;;
        *)
            FAILED=1
            log "image $index: last lines of its scrubbed log:"
            tail -n 20 -- "$dir/scan.log" >&2
            ;;
    esac
}

report_setup_failure() { # every image gets an error status, so the app learns why
    local index now dir=$WORK_DIR/setup
    mkdir -p "$dir"
    now=$(utc_now)
    printf '[qscan] %s\n' "$SETUP_ERROR" >&2
    for index in "${!IMAGES[@]}"; do
        write_status "$dir/status-$index.json" "$index" "${IMAGES[$index]}" "$SETUP_FAILED_EXIT_CODE" error "$now" "$now" '' \
            "$SETUP_ERROR"
        upload_blob "$index" "$dir/status-$index.json" status.json application/json
    done
}

main() {
    validate_config
    read_images
    collect_secrets
    WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/qscan.XXXXXX")
    trap 'rm -rf -- "$WORK_DIR"' EXIT
    trap 'exit 143' TERM INT
    mkdir -p "$WORK_DIR/cache" "$WORK_DIR/tmp" "$WORK_DIR/home"
    SCAN_HOME=${HOME:-}
    if [[ -z $SCAN_HOME || ! -d $SCAN_HOME || ! -w $SCAN_HOME ]]; then SCAN_HOME=$WORK_DIR/home; fi
    log "${#IMAGES[@]} image(s) to scan, up to ${SCAN_TIMEOUT_PER_IMAGE}s each"
    if ! resolve_qscanner; then
        report_setup_failure
        exit "$EXIT_SCANNER_UNAVAILABLE"
    fi
    local index
    for index in "${!IMAGES[@]}"; do
        scan_image "$index" "${IMAGES[$index]}"
    done
    if ((FAILED || UPLOAD_FAILED)); then exit "$EXIT_SOME_FAILED"; fi
    log "done: every image has a result"
}

# Sourcing the script (tests do) defines its functions without running it.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
