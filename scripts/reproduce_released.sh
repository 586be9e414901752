#!/usr/bin/env bash
# Test the ten released pose-transfer models and evaluate each under both protocols; write one Markdown table.
#
#   bash scripts/reproduce_released.sh [--gpu_ids 0] [--models "0.5 m0.5"] [--checkpoints_dir checkpoints]
#                                      [--out_dir eval_released] [--dry_run] [-- <extra scripts/evaluate.py args>]
#
# First checks that every model, flow module and dataset is where scripts/download_models.sh,
# download_deepfashion.sh and download_market1501.sh put them, and lists exactly what is missing otherwise.
# Then, per model: scripts/test_pose_transfer.py --save_output (Market: --masked) into
# <out_dir>/PoseTransfer_<model>/test_test_best/ (--results_dir: the released folders stay untouched; --overwrite:
# a rerun replaces the earlier results), which prints the path of its metrics.json; that JSON names the folder of
# generated images ('output_dir') and the dataset, and
# scripts/evaluate.py --test_json <it> evaluates that folder under intrinsic_flow and gfla. The table (model x
# metric, both protocols) goes to <out_dir>/released.md, the reports to <out_dir>/<model>_<protocol>.json.
# Extra arguments after `--` go to every evaluate.py call (e.g. -- --fid_weights /path/inception_v3_google-0cc3c7bd.pth).
# --dry_run checks the inputs and prints the commands without running them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/_python.sh

gpu_ids=0
models="0.1 0.2 0.3 0.4 0.5 m0.1 m0.2 m0.3 m0.4 m0.5"
checkpoints_dir=checkpoints
out_dir=eval_released
dry_run=0
protocols="intrinsic_flow gfla"
eval_extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gpu_ids) gpu_ids="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --checkpoints_dir) checkpoints_dir="$2"; shift 2 ;;
        --out_dir) out_dir="$2"; shift 2 ;;
        --dry_run) dry_run=1; shift ;;
        --) shift; eval_extra=("$@"); break ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "reproduce_released.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# shellcheck disable=SC2086  # $models is a list of ids
if ! "$python" scripts/released_models.py --checkpoints_dir "$checkpoints_dir" --models $models; then
    echo "reproduce_released.sh: the files listed as missing above are needed; nothing was run." >&2
    exit 1
fi

run() {
    if [[ $dry_run == 1 ]]; then
        printf '%q ' "$@"; echo
    else
        "$@"
    fi
}

mkdir -p "$out_dir"
reports=()
for model in $models; do
    dataset=deepfashion; masked=()
    if [[ $model == m* ]]; then dataset=market; masked=(--masked); fi
    test_cmd=("$python" scripts/test_pose_transfer.py --gpu_ids "$gpu_ids" --id "PoseTransfer_$model"
              --which_epoch best --save_output ${masked[@]+"${masked[@]}"} --checkpoints_dir "$checkpoints_dir"
              --results_dir "$out_dir/PoseTransfer_$model" --overwrite)
    if [[ $dry_run == 1 ]]; then
        run "${test_cmd[@]}"
        test_json='<the metrics.json the test prints>'
    else
        log="$out_dir/PoseTransfer_${model}_test.log"
        "${test_cmd[@]}" 2>&1 | tee "$log"
        # The test script ends with "metrics written to <json>"; the JSON holds output_dir and the dataset options.
        test_json=$(sed -n 's/^metrics written to //p' "$log" | tail -n 1)
        if [[ -z "$test_json" || ! -f "$test_json" ]]; then
            echo "reproduce_released.sh: the test of PoseTransfer_$model printed no 'metrics written to <json>' line" \
                 "(log: $log)" >&2
            exit 1
        fi
    fi
    for protocol in $protocols; do
        report="$out_dir/PoseTransfer_${model}_${protocol}.json"
        run "$python" scripts/evaluate.py --test_json "$test_json" --protocol "$protocol" --gpu_ids "$gpu_ids" \
            --checkpoints_dir "$checkpoints_dir" --label "PoseTransfer_$model" --out "$report" \
            ${eval_extra[@]+"${eval_extra[@]}"}
        reports+=("$report")
    done
    echo "($dataset done: PoseTransfer_$model)"
done
run "$python" scripts/evaluate.py --combine "${reports[@]}" --md_out "$out_dir/released.md"
