// The Prometheus exporter: names, types and labels of the exposition text, counters that
// only go up, and the real HTTP endpoint.
#include "framework/metrics/exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hone {
namespace {

using ::testing::HasSubstr;

// The value of the one sample of `family` whose labels are exactly `labels` (any order).
double Sample(const std::string& text, const std::string& family, const std::map<std::string, std::string>& labels) {
  std::istringstream in(text);
  std::string line;
  std::vector<double> found;
  const std::regex sample_line(R"(([a-z_:][a-z0-9_:]*)(\{(.*)\})? (\S+))");
  const std::regex label(R"re(([a-z_]+)="([^"]*)")re");
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, sample_line) || m[1] != family) continue;
    std::map<std::string, std::string> seen;
    const std::string label_text = m[3];
    for (std::sregex_iterator it(label_text.begin(), label_text.end(), label), end; it != end; ++it) {
      seen[(*it)[1]] = (*it)[2];
    }
    if (seen == labels) found.push_back(std::stod(m[4]));
  }
  EXPECT_EQ(found.size(), 1u) << family << " in\n" << text;
  return found.empty() ? -1 : found[0];
}

std::map<std::string, std::string> Types(const std::string& text) {
  std::map<std::string, std::string> types;
  std::regex type_line(R"(# TYPE (\S+) (\S+))");
  for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it) {
    types[(*it)[1]] = (*it)[2];
  }
  return types;
}

TEST(PrometheusSeriesFor, MapsMetricsLogNamesToConventionalFamilies) {
  auto s = PrometheusSeriesFor("seconds_gen");
  EXPECT_EQ(s.family, "hone_phase_seconds");
  EXPECT_EQ(s.labels.at("phase"), "gen");
  s = PrometheusSeriesFor("tokens_per_second_train");
  EXPECT_EQ(s.family, "hone_phase_tokens_per_second");
  EXPECT_EQ(s.labels.at("phase"), "train");
  EXPECT_EQ(PrometheusSeriesFor("reward_mean").family, "hone_reward_mean");
  EXPECT_TRUE(PrometheusSeriesFor("reward_std").labels.empty());
  s = PrometheusSeriesFor("reward_boxed_integer_mean");
  EXPECT_EQ(s.family, "hone_reward_component_mean");
  EXPECT_EQ(s.labels.at("component"), "boxed_integer");
  s = PrometheusSeriesFor("val_pass_at_8");
  EXPECT_EQ(s.family, "hone_val_pass_at_k");
  EXPECT_EQ(s.labels.at("k"), "8");
  EXPECT_EQ(PrometheusSeriesFor("response_length_mean").family, "hone_response_length_mean_tokens");
  EXPECT_EQ(PrometheusSeriesFor("val_response_length_mean").family, "hone_val_response_length_mean_tokens");
  s = PrometheusSeriesFor("weight_sync_gbps");
  EXPECT_EQ(s.family, "hone_weight_sync_bytes_per_second");
  EXPECT_DOUBLE_EQ(s.scale, 1e9);
  EXPECT_EQ(PrometheusSeriesFor("generated_tokens").kind, PrometheusSeries::Kind::kCounterDelta);
  EXPECT_EQ(PrometheusSeriesFor("skipped_updates").family, "hone_skipped_updates_total");
  EXPECT_EQ(PrometheusSeriesFor("skipped_updates").kind, PrometheusSeries::Kind::kCounterTotal);
  EXPECT_EQ(PrometheusSeriesFor("kl").family, "hone_kl");
  EXPECT_EQ(PrometheusSeriesFor("reward_my-fn_max").labels.at("component"), "my_fn");
}

TEST(MetricsExporter, ExpositionHasConventionalNamesTypesAndRunLabel) {
  auto exporter = MetricsExporter::WithoutServer("demo");
  exporter->PublishStep(1, {{"seconds_gen", 1.5}, {"seconds_train", 0.25}, {"reward_mean", 0.4},
                            {"reward_boxed_integer_mean", 0.3}, {"accuracy", 0.3}, {"generated_tokens", 100},
                            {"trained_tokens", 250}, {"skipped_updates", 0}, {"val_pass_at_4", 0.5},
                            {"weight_sync_gbps", 2.0}, {"kl", 0.01}});
  exporter->PublishStep(2, {{"seconds_gen", 2.5}, {"generated_tokens", 50}, {"trained_tokens", 100},
                            {"skipped_updates", 1}});
  exporter->SetWorkerUp("rollout", 1, "node-a", true);
  exporter->SetWorkerUp("trainer", 3, "node-b", false);
  const std::string text = exporter->ExpositionText();

  EXPECT_DOUBLE_EQ(Sample(text, "hone_phase_seconds", {{"phase", "gen"}, {"run", "demo"}}), 2.5);  // the last step's
  EXPECT_DOUBLE_EQ(Sample(text, "hone_phase_seconds", {{"phase", "train"}, {"run", "demo"}}), 0.25);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_reward_component_mean", {{"component", "boxed_integer"}, {"run", "demo"}}), 0.3);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_val_pass_at_k", {{"k", "4"}, {"run", "demo"}}), 0.5);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_weight_sync_bytes_per_second", {{"run", "demo"}}), 2e9);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_generated_tokens_total", {{"run", "demo"}}), 150);  // summed over steps
  EXPECT_DOUBLE_EQ(Sample(text, "hone_trained_tokens_total", {{"run", "demo"}}), 350);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_skipped_updates_total", {{"run", "demo"}}), 1);  // the trainer's run total
  EXPECT_DOUBLE_EQ(Sample(text, "hone_steps_total", {{"run", "demo"}}), 2);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_step", {{"run", "demo"}}), 2);
  EXPECT_GT(Sample(text, "hone_last_step_timestamp_seconds", {{"run", "demo"}}), 1.7e9);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_worker_up", {{"host", "node-a"}, {"rank", "1"}, {"role", "rollout"}, {"run", "demo"}}), 1);
  EXPECT_DOUBLE_EQ(Sample(text, "hone_worker_up", {{"host", "node-b"}, {"rank", "3"}, {"role", "trainer"}, {"run", "demo"}}), 0);

  // Conventions: snake_case hone_ names; counters and only counters end in _total.
  const auto types = Types(text);
  ASSERT_GE(types.size(), 12u);
  const std::regex snake("hone_[a-z0-9_]+");
  for (const auto& [name, type] : types) {
    EXPECT_TRUE(std::regex_match(name, snake)) << name;
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", total) << name << " is a " << type;
    EXPECT_TRUE(type == "counter" || type == "gauge") << name;
  }
  EXPECT_THAT(text, HasSubstr("# HELP hone_phase_seconds "));
}

TEST(MetricsExporter, SkippedUpdatesCounterNeverGoesDown) {
  auto exporter = MetricsExporter::WithoutServer("r");
  exporter->PublishStep(1, {{"skipped_updates", 2}});
  exporter->PublishStep(2, {{"skipped_updates", 1}});  // cannot happen, but must not decrease
  EXPECT_DOUBLE_EQ(Sample(exporter->ExpositionText(), "hone_skipped_updates_total", {{"run", "r"}}), 2);
}

// GET /metrics over a plain socket: what Prometheus does when it scrapes.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

TEST(MetricsExporter, ServesTheExpositionOverHttp) {
  auto exporter = MetricsExporter::Serve("127.0.0.1", 0, "http");
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_GT((*exporter)->port(), 0);
  (*exporter)->PublishStep(7, {{"reward_mean", 0.75}});
  const std::string response = HttpGet((*exporter)->port(), "/metrics");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("hone_reward_mean{run=\"http\"} 0.75"));
  EXPECT_THAT(response, HasSubstr("hone_step{run=\"http\"} 7"));
}

TEST(MetricsExporter, ABusyPortIsAnErrorNamingItAndTheKeys) {
  auto first = MetricsExporter::Serve("127.0.0.1", 0, "a");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsExporter::Serve("127.0.0.1", (*first)->port(), "b");
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("127.0.0.1:" + std::to_string((*first)->port())));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("metrics.port"));
}

}  // namespace
}  // namespace hone
