"""Evaluate this DCASE2025 Task 1 submission the organisers' way: the development-test split (device from
meta.csv's source_label) and the evaluation set (device from evaluation_setup/fold1_test.csv's device_id).

    python evaluate_submission.py --submission_name LABEL_WITHOUT_INDEX --submission_index N \
        --dev_set_dir /path/to/TAU-urban-acoustic-scenes-2022-mobile-development --eval_set_dir /path/to/the/evaluation/set

Writes predictions/<name>_<index>/output.csv (the evaluation set: filename, scene_label, one probability per
class, tab separated), test_output.csv (the same for the development-test split) and test_accuracy.json.
The official script downloads the test split list (test.csv); it is fold1_evaluate.csv of the development
set, read from there.
"""

import argparse
import importlib
import json
import os

import numpy as np
import pandas as pd


def parse_args():
    parser = argparse.ArgumentParser(description="Evaluate a DCASE2025 Task 1 submission.")
    parser.add_argument("--submission_name", type=str, required=True)
    parser.add_argument("--submission_index", type=int, required=True)
    parser.add_argument("--dev_set_dir", type=str, required=True)
    parser.add_argument("--eval_set_dir", type=str, required=True)
    parser.add_argument("--output_dir", type=str, default="predictions")
    return parser.parse_args()


def softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def output_table(filenames, logits, class_order):
    probabilities = softmax(np.asarray(logits, dtype=np.float64))
    table = pd.DataFrame({"filename": list(filenames), "scene_label": [class_order[i] for i in probabilities.argmax(axis=1)]})
    for index, label in enumerate(class_order):
        table[label] = probabilities[:, index]
    return table


def main():
    args = parse_args()
    api = importlib.import_module(f"{args.submission_name}.{args.submission_name}_{args.submission_index}")
    meta = pd.read_csv(os.path.join(args.dev_set_dir, "meta.csv"), sep="\t")
    test = pd.read_csv(os.path.join(args.dev_set_dir, "evaluation_setup", "fold1_evaluate.csv"), sep="\t").drop(columns=["scene_label"], errors="ignore")
    test = test.merge(meta, on="filename")
    logits, class_order = api.predict(file_paths=[os.path.join(args.dev_set_dir, f) for f in test["filename"]],
                                      device_ids=test["source_label"].tolist(), model_file_path=None, use_cuda=False)
    predicted = np.asarray(logits).argmax(axis=1)
    truth = np.array([class_order.index(label) for label in test["scene_label"]])
    accuracy = float(np.mean(predicted == truth))
    print(f"Development-test accuracy: {accuracy * 100:.2f}%")
    evaluation = pd.read_csv(os.path.join(args.eval_set_dir, "evaluation_setup", "fold1_test.csv"), sep="\t")
    eval_logits, eval_class_order = api.predict(file_paths=[os.path.join(args.eval_set_dir, f) for f in evaluation["filename"]],
                                                device_ids=evaluation["device_id"].tolist(), model_file_path=None, use_cuda=False)
    assert eval_class_order == class_order, "class order differs between the test and the evaluation predictions"
    output_dir = os.path.join(args.output_dir, f"{args.submission_name}_{args.submission_index}")
    os.makedirs(output_dir, exist_ok=True)
    output_table(evaluation["filename"], eval_logits, class_order).to_csv(os.path.join(output_dir, "output.csv"), sep="\t", index=False)
    output_table(test["filename"], logits, class_order).to_csv(os.path.join(output_dir, "test_output.csv"), sep="\t", index=False)
    with open(os.path.join(output_dir, "test_accuracy.json"), "w") as file:
        json.dump({"accuracy": round(accuracy * 100, 2)}, file, indent=2)
    print(f"Submission ready: {output_dir}/output.csv")


if __name__ == "__main__":
    main()
