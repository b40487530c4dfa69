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
readonly MAX_RESULT_FILE_BYTES=33554432 # the app reads at most 32 MiB of a report (core/report.py)
readonly MAX_REF_LENGTH=1024
readonly SCAN_MODES=' get-report scan-only inventory-only evaluate-policy '
readonly REPORTING_MODES=' get-report evaluate-policy ' # the only modes in which QScanner fetches a report
readonly REPORT_FORMATS=' json sarif table gitlab '      # QScanner's --report-format values (README v4.8.0)
readonly SBOM_FORMATS=' spdx cyclonedx none '             # added to --format json; none: inventory only
readonly REPORT_FETCH_RESERVE=300 # QScanner waits 15 s for the report, then retries at 5, 10, 20, 40, 80, 120 s (290 s)
readonly OFFICIAL_DOWNLOAD_BASE='https://www.qualys.com/qscanner/download'
readonly DOWNLOAD_SCRIPT_NAME='download_qscanner.sh'
readonly DOWNLOAD_SCRIPT_TIMEOUT=600

# The reference grammar of distribution/reference (as core/images.py), as an allow-list.
readonly RE_DOMAIN_COMPONENT='([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])'
readonly RE_DOMAIN="(${RE_DOMAIN_COMPONENT}(\\.${RE_DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(:[0-9]+)?"
readonly RE_PATH_COMPONENT='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*'
readonly RE_TAG=':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
readonly RE_DIGEST='@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
readonly RE_IMAGE_REF="^(${RE_DOMAIN}/)?${RE_PATH_COMPONENT}(/${RE_PATH_COMPONENT})*(${RE_TAG})?(${RE_DIGEST})?\$"
readonly RE_DOWNLOAD_URL='^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+=,/-]*)?$'
readonly RE_CONTAINER_URL='^https?://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~%/-]+$'
readonly RE_SAS_QUERY='^[A-Za-z0-9._~%/+=:&-]+$'

log() { printf '[qscan] %s\n' "$*"; }
valid_list() { # comma list, ' allowed values ': every item allowed, no blanks
    local item
    [[ $1 =~ ^[a-z]+(,[a-z]+)*$ ]] || return 1
    for item in ${1//,/ }; do [[ $2 == *" $item "* ]] || return 1; done
}
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
    QSCANNER_REPORT_FORMATS=${QSCANNER_REPORT_FORMATS:-sarif,json}
    valid_list "$QSCANNER_REPORT_FORMATS" "$REPORT_FORMATS" ||
        fail_input "QSCANNER_REPORT_FORMATS must be a comma-separated list of:$REPORT_FORMATS"
    if [[ $REPORTING_MODES == *" $QSCANNER_MODE "* && ! ,$QSCANNER_REPORT_FORMATS, =~ ,(sarif|json), ]]; then
        fail_input "QSCANNER_REPORT_FORMATS must hold sarif or json in $QSCANNER_MODE mode (the app reads no other)"
    fi
    QSCANNER_SBOM_FORMAT=${QSCANNER_SBOM_FORMAT:-spdx}
    [[ $QSCANNER_SBOM_FORMAT =~ ^[a-z]+$ && $SBOM_FORMATS == *" $QSCANNER_SBOM_FORMAT "* ]] ||
        fail_input "QSCANNER_SBOM_FORMAT must be one of:$SBOM_FORMATS"
    SCAN_TIMEOUT_PER_IMAGE=${SCAN_TIMEOUT_PER_IMAGE:-600}
    [[ $SCAN_TIMEOUT_PER_IMAGE =~ ^[1-9][0-9]{0,5}$ ]] || fail_input "SCAN_TIMEOUT_PER_IMAGE must be whole seconds"
    SCAN_KILL_AFTER=${SCAN_KILL_AFTER:-10}
    [[ $SCAN_KILL_AFTER =~ ^[1-9][0-9]{0,3}$ ]] || fail_input "SCAN_KILL_AFTER must be whole seconds"
    QSCANNER_VERSION=${QSCANNER_VERSION:-}
    if [[ -n $QSCANNER_VERSION && ! $QSCANNER_VERSION =~ ^[vV]?[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+)?$ ]]; then
        fail_input "QSCANNER_VERSION must look like 4.8.0-2 (a leading v is fine)"
    fi
    QSCANNER_VERSION=${QSCANNER_VERSION#[vV]}
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
        return 1
    }
}

write_status() { # file index image exit_code result started finished detail [uploaded blob names...]
    local file=$1 index=$2 image=$3 code=$4 result=$5 started=$6 finished=$7 detail=$8 sep='' name
    shift 8
    {
        printf '{"image": %s, "index": %d, "exit_code": %d, "result": %s' \
            "$(json_string "$image")" "$index" "$code" "$(json_string "$result")"
        printf ', "started_at": %s, "finished_at": %s' "$(json_string "$started")" "$(json_string "$finished")"
        # The scanner derives no digest: the app reads RepoDigests from scanresult.json (docs/scanner.md).
        printf ', "digest": "", "mode": %s, "files": [' "$(json_string "$QSCANNER_MODE")"
        for name in "$@"; do printf '%s%s' "$sep" "$(json_string "$name")"; sep=', '; done
        printf ']'
        if [[ -n $detail ]]; then printf ', "detail": %s, "error": %s' "$(json_string "$detail")" "$(json_string "$detail")"; fi
        printf '}\n'
    } >"$file"
}

# ---------------------------------------------------------------- getting QScanner
QSCANNER_BIN=''
SETUP_ERROR=''
default_download_url() { # the documented download script of the version (qscanner.md, "Distribution")
    [[ -n $QSCANNER_VERSION ]] || return 1
    printf '%s/%s/%s' "$OFFICIAL_DOWNLOAD_BASE" "$QSCANNER_VERSION" "$DOWNLOAD_SCRIPT_NAME"
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

find_binary() { # directory; sets QSCANNER_BIN to the first regular file named qscanner below it
    local candidate
    for candidate in "$1"/**/qscanner; do
        if [[ -f $candidate && ! -L $candidate ]]; then QSCANNER_BIN=$candidate; return 0; fi
    done
    return 1
}

unpack_qscanner() { # artifact, directory; sets QSCANNER_BIN or SETUP_ERROR
    local artifact=$1 dir=$2
    if [[ $(magic_of "$artifact") == 1f8b* ]]; then
        ensure_tool gzip || return 1
        gzip -dc -- "$artifact" >"$dir/artifact.unpacked" || { SETUP_ERROR='the QScanner download is not valid gzip'; return 1; }
        artifact=$dir/artifact.unpacked
    fi
    if is_tar "$artifact"; then
        ensure_tool tar || return 1
        mkdir -p "$dir/x"
        tar --no-same-owner -xf "$artifact" -C "$dir/x" || { SETUP_ERROR='the QScanner archive could not be unpacked'; return 1; }
        find_binary "$dir/x" && return 0
        SETUP_ERROR='the QScanner archive holds no qscanner file'
        return 1
    fi
    QSCANNER_BIN=$artifact # neither gzip nor tar: the executable itself (verified by its SHA256 already)
}

run_download_script() { # script, directory; Qualys' script fetches and checks the binary itself (UNCONFIRMED layout)
    local script=$1 dir=$2
    mkdir -p "$dir/x" "$dir/script-home" "$dir/script-tmp"
    # A clean environment: the script sees no Qualys, registry or storage secret.
    if ! (cd "$dir/x" && env -i PATH="$PATH" HOME="$dir/script-home" TMPDIR="$dir/script-tmp" LC_ALL=C \
        timeout "$DOWNLOAD_SCRIPT_TIMEOUT" bash "$script" >"$dir/script.log" 2>&1 </dev/null); then
        SETUP_ERROR="Qualys' download script failed: $(tail -n 3 -- "$dir/script.log" | tr '\n' ' ' | scrub)"
        return 1
    fi
    find_binary "$dir/x" && return 0
    SETUP_ERROR="Qualys' download script left no qscanner file"
    return 1
}

download_qscanner() { # sets QSCANNER_BIN or SETUP_ERROR
    local url actual dir=$WORK_DIR/download
    mkdir -p "$dir"
    url=${QSCANNER_DOWNLOAD_URL:-$(default_download_url || true)}
    [[ -n $url ]] || { SETUP_ERROR='set QSCANNER_DOWNLOAD_URL or QSCANNER_VERSION'; return 1; }
    if [[ -z $QSCANNER_SHA256 ]]; then # no trust on first use: a pin is the only protection against a bad server
        SETUP_ERROR="QSCANNER_SHA256 is not set: the QScanner download ($url) was refused"
        return 1
    fi
    log "qscanner is not on PATH; downloading $url"
    fetch "$url" "$dir/artifact" || { SETUP_ERROR="download of QScanner failed"; return 1; }
    read -r actual _ < <(sha256sum -- "$dir/artifact")
    if [[ ${actual,,} != "${QSCANNER_SHA256,,}" ]]; then
        SETUP_ERROR='QScanner checksum mismatch: the download was refused'
        return 1
    fi
    if [[ ${url%%\?*} == */"$DOWNLOAD_SCRIPT_NAME" ]]; then
        run_download_script "$dir/artifact" "$dir" || return 1
    else
        unpack_qscanner "$dir/artifact" "$dir" || return 1
    fi
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
qscanner_scan_timeout() { # seconds for --scan-timeout: the per-image limit less the report fetch's share
    local reserve=$REPORT_FETCH_RESERVE
    if ((reserve > SCAN_TIMEOUT_PER_IMAGE / 2)); then reserve=$((SCAN_TIMEOUT_PER_IMAGE / 2)); fi
    printf '%d' "$((SCAN_TIMEOUT_PER_IMAGE - reserve))"
}

run_qscanner() { # reference, output dir, log file; the one place that knows QScanner's command line
    local ref=$1 out=$2 log_file=$3 inventory=json
    if [[ $QSCANNER_SBOM_FORMAT != none ]]; then inventory+=,$QSCANNER_SBOM_FORMAT; fi
    local -a args=(--pod "$QUALYS_POD" --scan-types "$SCAN_TYPES" --mode "$QSCANNER_MODE")
    if [[ $QSCANNER_MODE == evaluate-policy && -n $POLICY_TAGS ]]; then args+=(--policy-tags "$POLICY_TAGS"); fi
    args+=(--output-dir "$out" --cache-dir "$WORK_DIR/cache" --scan-timeout "$(qscanner_scan_timeout)s")
    args+=(--format "$inventory")
    if [[ $REPORTING_MODES == *" $QSCANNER_MODE "* ]]; then args+=(--report-format "$QSCANNER_REPORT_FORMATS"); fi
    args+=(image "$ref")
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

# QScanner's output file (glob below the output dir) -> the blob name it is uploaded as; see docs/scanner.md.
readonly -a OUTPUT_GLOBS=('*-Report.sarif.json' '*-Report.json' '*-ScanResult.json' '*-ScanResult.spdx.json')
readonly -a OUTPUT_BLOBS=(report.sarif.json report.json scanresult.json sbom.spdx.json)

first_file() { # directory, glob; prints the first regular file (no symlink) whose name matches glob below directory
    local candidate
    for candidate in "$1"/**/*; do
        # shellcheck disable=SC2053 # $2 is a glob on purpose
        if [[ ${candidate##*/} == $2 && -f $candidate && ! -L $candidate ]]; then printf '%s' "$candidate"; return 0; fi
    done
    return 1
}

cyclonedx_file() { # directory; the CycloneDX SBOM's name is unconfirmed: any -ScanResult*.json naming cyclonedx/cdx
    local candidate lower
    for candidate in "$1"/**/*-ScanResult*.json; do
        lower=${candidate##*/}
        lower=${lower,,}
        if [[ ($lower == *cyclonedx* || $lower == *cdx*) && -f $candidate && ! -L $candidate ]]; then
            printf '%s' "$candidate"
            return 0
        fi
    done
    return 1
}

UPLOADED=()
upload_outputs() { # index, output dir, log file to note skipped files in; fills UPLOADED with the blob names
    local index=$1 out=$2 notes=$3 n file size
    local -a sources=() blobs=()
    UPLOADED=()
    for n in "${!OUTPUT_GLOBS[@]}"; do
        if file=$(first_file "$out" "${OUTPUT_GLOBS[$n]}"); then sources+=("$file"); blobs+=("${OUTPUT_BLOBS[$n]}"); fi
    done
    if file=$(cyclonedx_file "$out"); then sources+=("$file"); blobs+=(sbom.cyclonedx.json); fi
    for n in "${!sources[@]}"; do
        size=$(wc -c <"${sources[$n]}")
        if ((size > MAX_RESULT_FILE_BYTES)); then
            printf '[qscan] %s not uploaded: %d bytes, more than %d\n' "${blobs[$n]}" "$size" "$MAX_RESULT_FILE_BYTES" >>"$notes"
            continue
        fi
        if upload_blob "$index" "${sources[$n]}" "${blobs[$n]}" application/json; then UPLOADED+=("${blobs[$n]}"); fi
    done
}

FAILED=0
scan_image() { # index, reference
    local index=$1 ref=$2 dir=$WORK_DIR/images/$1 started finished t0 code=0 result
    mkdir -p "$dir/out"
    started=$(utc_now)
    t0=$(date +%s)
    log "image $index: scanning $ref"
    run_qscanner "$ref" "$dir/out" "$dir/raw.log" || code=$?
    finished=$(utc_now)
    result=$(result_for "$code" "$(($(date +%s) - t0))")
    upload_outputs "$index" "$dir/out" "$dir/raw.log"
    prepare_log "$dir/raw.log" "$dir/scan.log"
    if upload_blob "$index" "$dir/scan.log" scan.log 'text/plain; charset=utf-8'; then UPLOADED+=(scan.log); fi
    write_status "$dir/status.json" "$index" "$ref" "$code" "$result" "$started" "$finished" '' "${UPLOADED[@]}"
    upload_blob "$index" "$dir/status.json" status.json application/json || true
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
        write_status "$dir/status-$index.json" "$index" "${IMAGES[$index]}" "$SETUP_FAILED_EXIT_CODE" error "$now" "$now" \
            "$SETUP_ERROR"
        upload_blob "$index" "$dir/status-$index.json" status.json application/json || true
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
    log "${#IMAGES[@]} image(s) to scan, up to ${SCAN_TIMEOUT_PER_IMAGE}s each (QScanner --scan-timeout $(qscanner_scan_timeout)s)"
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
