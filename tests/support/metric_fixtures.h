// Reading the fixtures that reference/make_metric_fixtures.py writes under tests/data/metrics/
// (pairs.json, bleu.json, rouge.json). Header-only, torch-free. Not a fixture writer.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "support/test_paths.h"

namespace sentinel::testing {

inline const char* kRegenerateMetricFixtures =
    "regenerate with: python3 reference/make_metric_fixtures.py (sacrebleu==2.6.0, rouge-score==0.1.2, nltk==3.10.4)";

inline nlohmann::json read_metric_fixture(const std::string& name) {
  return nlohmann::json::parse(read_file(source_path("tests/data/metrics/" + name)));
}

struct MetricPair {
  std::string name, hypothesis, reference;
};

inline MetricPair metric_pair(const nlohmann::json& pairs, const nlohmann::json& index) {
  const nlohmann::json& pair = pairs.at(index.get<size_t>());
  return {pair["name"].get<std::string>(), pair["hypothesis"].get<std::string>(), pair["reference"].get<std::string>()};
}

}  // namespace sentinel::testing
