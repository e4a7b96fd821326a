#!/usr/bin/env bash
# Runs a partitioned sweep: the Indexed Job (indexed-job.yaml), then, once every partition
# completed, the merge (merge-job.yaml); prints the merge's log and exit code and exits
# with it (0 clean, 1 findings, 2 refused; see README.md), or with 3 when the partitions
# failed or the merge did not finish. The ConfigMap and the Secret must exist already
# (kubectl apply -f configmap.yaml, and your Secret).
#
# Settings (environment):
#   NAMESPACE        namespace to run in            (default: the kubectl context's)
#   DIR              where the YAML files are        (default: this script's directory)
#   PARTITION_TIMEOUT  how long the partitions may take  (default: 6h)
#   MERGE_TIMEOUT    how long the merge may take     (default: 1h)
#   KUBECTL          the kubectl to use              (default: kubectl)
set -euo pipefail

DIR=${DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
PARTITION_TIMEOUT=${PARTITION_TIMEOUT:-6h}
MERGE_TIMEOUT=${MERGE_TIMEOUT:-1h}
KUBECTL=${KUBECTL:-kubectl}
NAMESPACE=${NAMESPACE:-}

ns=()
if [[ -n $NAMESPACE ]]; then
    ns=(--namespace "$NAMESPACE")
fi
k() {
    "$KUBECTL" ${ns[@]+"${ns[@]}"} "$@"
}

# Waits until job $1 is Complete (returns 0) or Failed (returns 1), at most $2 (else 2).
wait_job() {
    local job=$1 timeout=$2 complete failed rc=2
    # kubectl itself in the background (not the function k), so that kill reaches it.
    "$KUBECTL" ${ns[@]+"${ns[@]}"} wait --for=condition=complete "job/$job" \
        --timeout="$timeout" >/dev/null 2>&1 &
    complete=$!
    "$KUBECTL" ${ns[@]+"${ns[@]}"} wait --for=condition=failed "job/$job" \
        --timeout="$timeout" >/dev/null 2>&1 &
    failed=$!
    while kill -0 "$complete" 2>/dev/null && kill -0 "$failed" 2>/dev/null; do
        sleep 2
    done
    if ! kill -0 "$complete" 2>/dev/null && wait "$complete"; then
        rc=0
    elif ! kill -0 "$failed" 2>/dev/null && wait "$failed"; then
        rc=1
    fi
    kill "$complete" "$failed" 2>/dev/null || true
    wait "$complete" "$failed" 2>/dev/null || true
    return "$rc"
}

# A Job's pod template cannot be changed and its name is unique: start from scratch.
k delete job docsweep-merge docsweep-partitions --ignore-not-found --wait=true

k apply -f "$DIR/indexed-job.yaml"
echo "waiting for the partitions (at most $PARTITION_TIMEOUT) ..."
if wait_job docsweep-partitions "$PARTITION_TIMEOUT"; then
    echo "partitions complete"
else
    rc=$?
    if [[ $rc == 1 ]]; then
        echo "the partitions failed:" >&2
    else
        echo "the partitions did not finish within $PARTITION_TIMEOUT:" >&2
    fi
    k get pods -l job-name=docsweep-partitions >&2 || true
    exit 3
fi

k apply -f "$DIR/merge-job.yaml"
echo "waiting for the merge (at most $MERGE_TIMEOUT) ..."
wait_job docsweep-merge "$MERGE_TIMEOUT" || true
k logs job/docsweep-merge --container docsweep || true

code=$(k get pods -l job-name=docsweep-merge \
    --sort-by=.metadata.creationTimestamp \
    -o jsonpath='{.items[-1:].status.containerStatuses[?(@.name=="docsweep")].state.terminated.exitCode}')
if [[ -z $code ]]; then
    echo "the merge did not finish" >&2
    exit 3
fi
echo "merge exit code: $code"
exit "$code"
