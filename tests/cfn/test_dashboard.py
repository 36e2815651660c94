"""The pipeline stack's CloudWatch dashboard draws what the functions publish.

The functions write each decision's numbers as Embedded Metric Format lines
(crates/canary-lambda/src/emf.rs). The dashboard must ask for exactly those: the same
namespace, the same dimension names in the same order, and only metric names the
functions write, for this stack's service, namespace and cluster.
"""

from __future__ import annotations

import json
import re
import unittest

import common

PIPELINE = common.CFN_DIR / "pipeline.yaml"
EMF = common.ROOT / "crates" / "canary-lambda" / "src" / "emf.rs"
PARAMS = {
    "ServiceName": "yelb-appserver",
    "KubernetesNamespace": "yelb",
    "ClusterName": "blogpost",
    "AWS::Region": "eu-west-1",
}


def body() -> dict:
    t = common.load(PIPELINE)
    dashboards = [r for r in t["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1, dashboards
    text = dashboards[0]["Properties"]["DashboardBody"]["Fn::Sub"]
    left = set(re.findall(r"\$\{([^}]+)\}", text)) - set(PARAMS)
    assert not left, f"placeholders without a value: {left}"
    for k, v in PARAMS.items():
        text = text.replace("${" + k + "}", v)
    return json.loads(text)


def emf_source() -> str:
    return EMF.read_text()


class Dashboard(unittest.TestCase):
    def test_the_body_is_json_once_substituted_and_every_widget_fits_the_grid(self):
        widgets = body()["widgets"]
        self.assertGreaterEqual(len(widgets), 5)
        for w in widgets:
            self.assertLessEqual(w["x"] + w["width"], 24, w)

    def test_every_metric_is_one_the_functions_write_with_their_namespace_and_dimensions(self):
        src = emf_source()
        namespace = re.search(r'pub const NAMESPACE: &str = "([^"]+)"', src).group(1)
        dims = json.loads(re.search(r'"Dimensions": (\[\[[^\]]*\]\])', src).group(1))[0]
        written = set(re.findall(r'\("((?:Canary|Stable)[A-Za-z]+)", "', src))
        self.assertIn("CanaryWeight", written)
        asked = set()
        for w in body()["widgets"]:
            if w["type"] != "metric":
                continue
            self.assertEqual(w["properties"]["region"], "eu-west-1")
            for m in w["properties"]["metrics"]:
                parts = [p for p in m if isinstance(p, str)]
                self.assertEqual(parts[0], namespace, m)
                asked.add(parts[1])
                self.assertEqual(parts[2::2], dims, m)
                self.assertEqual(parts[3::2], ["blogpost", "yelb", "yelb-appserver"], m)
        self.assertLessEqual(asked, written, f"asked for metrics the functions never write: {asked - written}")
        self.assertEqual(asked, written, f"written but not drawn: {written - asked}")

    def test_the_dashboard_is_named_per_service_and_output(self):
        t = common.load(PIPELINE)
        name = t["Resources"]["CanaryDashboard"]["Properties"]["DashboardName"]["Fn::Sub"]
        for p in ("${ServiceName}", "${KubernetesNamespace}", "${ClusterName}"):
            self.assertIn(p, name)
        self.assertIn("DashboardName", t["Outputs"])


if __name__ == "__main__":
    unittest.main()
