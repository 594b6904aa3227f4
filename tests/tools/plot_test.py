#!/usr/bin/python3
"""tools/plot.py: the moving average against a hand computation, and the files it writes
for two overlaid runs and an eval report (PNG signatures, every image inlined in the page).
Bad input (a malformed metrics line, no metrics.jsonl) exits non-zero naming the file."""
import base64
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import plot  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def write_run(directory, rewards):
    os.makedirs(directory)
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        for step, r in enumerate(rewards, 1):
            f.write(json.dumps({"step": step, "reward_mean": r, "accuracy": r / 2, "format_rate": 0.5,
                                "response_length_mean": 10 + step, "response_length_max": 20, "kl": None,
                                "entropy": 1.0, "seconds_gen": 0.5, "seconds_train": 0.25}) + "\n")


class MovingAverage(unittest.TestCase):
    def test_trailing_mean_skips_missing_values(self):
        got = plot.moving_average([None, 1.0, 3.0, float("nan"), 5.0, 7.0], 2)
        want = [None, 1.0, 2.0, 2.0, 4.0, 6.0]
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            if w is None:
                self.assertIsNone(g)
            else:
                self.assertAlmostEqual(g, w, places=12)

    def test_window_one_is_the_series(self):
        self.assertEqual(plot.moving_average([1.0, 2.0, 4.0], 1), [1.0, 2.0, 4.0])


class PlotFiles(unittest.TestCase):
    def run_plot(self, *args):
        return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plot.py"), *args],
                              capture_output=True, text=True)

    def test_two_runs_and_an_eval_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_run(os.path.join(tmp, "a"), [0.1, 0.2, 0.3, 0.2])
            write_run(os.path.join(tmp, "b"), [0.3, 0.1, 0.0])
            report = {"num_prompts": 4, "models": [
                {"label": "A", "path": "base", "pass_at_k": {"1": 0.25, "4": 0.5}},
                {"label": "B", "path": "trained", "pass_at_k": {"1": 0.5, "4": 0.75}}]}
            with open(os.path.join(tmp, "eval.json"), "w") as f:
                json.dump(report, f)
            out = os.path.join(tmp, "plots")
            result = self.run_plot(os.path.join(tmp, "a"), os.path.join(tmp, "b"), "--eval",
                                   os.path.join(tmp, "eval.json"), "--out", out)
            self.assertEqual(result.returncode, 0, result.stderr)
            expected = {"reward.png", "accuracy.png", "format_rate.png", "response_length.png", "entropy.png",
                        "seconds_per_phase.png", "passk.png"}
            written = {f for f in os.listdir(out) if f.endswith(".png")}
            # kl is null in every line and there is no validation or SFT loss: no empty panels.
            self.assertEqual(written, expected)
            with open(os.path.join(out, "index.html")) as f:
                page = f.read()
            for name in expected:
                with open(os.path.join(out, name), "rb") as f:
                    data = f.read()
                self.assertTrue(data.startswith(PNG), name)
                self.assertIn(base64.b64encode(data).decode("ascii"), page, f"{name} not inlined")
            self.assertIn("<td>a</td>", page)
            self.assertIn("<td>b</td>", page)

    def test_malformed_line_names_the_file_and_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_run(os.path.join(tmp, "a"), [0.1])
            with open(os.path.join(tmp, "a", "metrics.jsonl"), "a") as f:
                f.write("{not json\n")
            result = self.run_plot(os.path.join(tmp, "a"), "--out", os.path.join(tmp, "p"))
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("metrics.jsonl:2", result.stderr)

    def test_missing_metrics_log_is_an_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = self.run_plot(os.path.join(tmp, "nothing"), "--out", os.path.join(tmp, "p"))
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("nothing/metrics.jsonl not found", result.stderr)
            self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    unittest.main()
