#include "framework/model/safetensors.h"

#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace hone {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Must match INPUT_BITS in tools/make_safetensors_fixture.py, which wrote the fixture.
constexpr uint32_t kInputBits[] = {
    0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x3DCCCCCD, 0x3EAAAAAB, 0x40490FDB,
    0x3F808000, 0x3F818000, 0x3F801000, 0x3F803000, 0x477FE000, 0x477FEFFF, 0x477FF000,
    0x47C35000, 0x3727C5AC, 0x33800000, 0x33000000, 0x33000001, 0x387FFFFF, 0x7F7F0000,
    0x7F7FFFFF, 0x00000001, 0x00400000, 0xC2F6E979, 0x7F800000, 0xFF800000, 0x7FC00000,
};
constexpr size_t kNumInputs = sizeof(kInputBits) / sizeof(kInputBits[0]);
constexpr char kFixture[] = "tests/model_safetensors/fixtures/torch_f16_bf16.safetensors";

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t ToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
template <typename T>
std::vector<T> Elements(const RawTensor& t) {
  std::vector<T> out(t.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

RawTensor RandomTensor(DType dtype, std::vector<int64_t> shape, std::mt19937* rng) {
  RawTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(static_cast<size_t>(t.numel()) * DTypeSize(dtype));
  for (auto& b : t.data) b = static_cast<uint8_t>((*rng)());
  if (dtype == DType::kBool) {
    for (auto& b : t.data) b &= 1;
  }
  return t;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
// A file with the given header text (no padding) followed by `data`.
std::string FileBytes(const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

void ExpectSame(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << name;
    EXPECT_EQ(t.dtype, it->second.dtype) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_EQ(t.data, it->second.data) << name;  // byte-exact, NaN payloads included
  }
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "safetensors_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // Expects ReadSafetensors(path) to fail with a message naming the file (and `also`).
  void ExpectReadError(const std::string& path, const std::string& also = "") {
    absl::StatusOr<TensorMap> r = ReadSafetensors(path);
    ASSERT_FALSE(r.ok()) << "unexpectedly read " << path;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
    if (!also.empty()) {
      EXPECT_THAT(std::string(r.status().message()), HasSubstr(also));
    }
  }
  void ExpectHeaderError(const std::string& header, const std::string& data, const std::string& also = "") {
    const std::string path = Path("bad.safetensors");
    WriteBytes(path, FileBytes(header, data));
    SCOPED_TRACE(header);
    ExpectReadError(path, also);
  }

  std::string dir_;
  std::mt19937 rng_{12345};
};

TEST(DTypeTest, NamesSizesAndParsing) {
  const std::vector<std::pair<DType, std::string>> all = {
      {DType::kF32, "F32"}, {DType::kF16, "F16"}, {DType::kBF16, "BF16"}, {DType::kF64, "F64"}, {DType::kI64, "I64"},
      {DType::kI32, "I32"}, {DType::kI8, "I8"},   {DType::kU8, "U8"},     {DType::kBool, "BOOL"}};
  const std::vector<size_t> sizes = {4, 2, 2, 8, 8, 4, 1, 1, 1};
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(DTypeName(all[i].first), all[i].second);
    EXPECT_EQ(DTypeSize(all[i].first), sizes[i]);
    absl::StatusOr<DType> parsed = ParseDType(all[i].second);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, all[i].first);
  }
  EXPECT_FALSE(ParseDType("f32").ok());
  EXPECT_FALSE(ParseDType("F8_E4M3").ok());
  EXPECT_FALSE(ParseDType("").ok());
  EXPECT_TRUE(IsFloatingPoint(DType::kBF16));
  EXPECT_FALSE(IsFloatingPoint(DType::kI32));
  EXPECT_EQ((RawTensor{DType::kF32, {}, {}}.numel()), 1);
  EXPECT_EQ((RawTensor{DType::kF32, {3, 0}, {}}.numel()), 0);
}

TEST_F(SafetensorsTest, RoundTripEveryDTypeBitExact) {
  TensorMap tensors;
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI64, DType::kI32, DType::kI8,
                  DType::kU8, DType::kBool}) {
    const std::string n(DTypeName(d));
    tensors[n + ".matrix"] = RandomTensor(d, {3, 5}, &rng_);
    tensors[n + ".scalar"] = RandomTensor(d, {}, &rng_);    // 0-d: one element
    tensors[n + ".empty"] = RandomTensor(d, {0}, &rng_);    // no bytes at all
    tensors[n + ".empty2d"] = RandomTensor(d, {4, 0}, &rng_);
  }
  tensors["model.layers.0.self_attn.q_proj.weight"] = RandomTensor(DType::kBF16, {2, 3, 7}, &rng_);
  const std::string path = Path("model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}, {"note", "\"quoted\" \xc3\xa9"}}).ok());
  absl::StatusOr<TensorMap> back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(tensors, *back);
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  // Layout: the header is padded to 8 bytes with spaces, metadata first, tensors in name order.
  const std::string bytes = ReadBytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.rfind("{\"__metadata__\":{\"format\":\"pt\"", 0), 0u) << header;
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  const auto parsed = nlohmann::json::parse(header);
  EXPECT_EQ(parsed["BF16.matrix"]["data_offsets"][0], 0);
  EXPECT_EQ(parsed["BF16.scalar"]["shape"], nlohmann::json::array());

  // Deterministic: the same map gives the same bytes.
  ASSERT_TRUE(WriteSafetensors(Path("again.safetensors"), tensors,
                               {{"format", "pt"}, {"note", "\"quoted\" \xc3\xa9"}}).ok());
  EXPECT_EQ(bytes, ReadBytes(Path("again.safetensors")));
}

TEST_F(SafetensorsTest, EmptyMapAndNoMetadata) {
  const std::string path = Path("empty.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {}, {}).ok());
  EXPECT_EQ(ReadBytes(path), FileBytes("{}      ", ""));
  absl::StatusOr<TensorMap> back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->empty());
}

TEST_F(SafetensorsTest, AtomicWriteReplacesAndLeavesNoTemp) {
  const std::string path = Path("w.safetensors");
  TensorMap first = {{"a", RandomTensor(DType::kF32, {4}, &rng_)}};
  TensorMap second = {{"b", RandomTensor(DType::kF16, {2, 2}, &rng_)}};
  ASSERT_TRUE(WriteSafetensors(path, first).ok());
  ASSERT_TRUE(WriteSafetensors(path, second).ok());
  ExpectSame(second, *ReadSafetensors(path));
  for (const auto& e : fs::directory_iterator(dir_)) EXPECT_EQ(e.path().extension(), ".safetensors") << e.path();

  // A rejected write leaves the old file and no temp file.
  TensorMap bad = {{"bad", RawTensor{DType::kF32, {3}, std::vector<uint8_t>(11)}}};
  absl::Status st = WriteSafetensors(path, bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("'bad'"));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  ExpectSame(second, *ReadSafetensors(path));

  // An unwritable destination is an error naming it, not a crash.
  st = WriteSafetensors(Path("no/such/dir/x.safetensors"), first);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("no/such/dir"));
}

TEST_F(SafetensorsTest, WriteRejectsInvalidTensors) {
  const std::string path = Path("x.safetensors");
  EXPECT_FALSE(WriteSafetensors(path, {{"__metadata__", RawTensor{DType::kU8, {1}, {0}}}}).ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"neg", RawTensor{DType::kU8, {-1}, {}}}}).ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"bad\xff", RawTensor{DType::kU8, {1}, {0}}}}).ok());  // not UTF-8
  EXPECT_FALSE(WriteSafetensors(path, {{"ok", RawTensor{DType::kU8, {1}, {0}}}}, {{"k", "\xfe"}}).ok());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(SafetensorsTest, MissingFileAndDirectoryAreErrors) {
  absl::StatusOr<TensorMap> r = ReadSafetensors(Path("nope.safetensors"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("nope.safetensors"));
  ExpectReadError(dir_);  // a directory is not a file
}

TEST_F(SafetensorsTest, EveryTruncationIsAnError) {
  const std::string path = Path("full.safetensors");
  TensorMap tensors = {{"a", RandomTensor(DType::kF32, {3}, &rng_)},
                       {"b", RandomTensor(DType::kBF16, {5}, &rng_)},
                       {"c", RandomTensor(DType::kI64, {}, &rng_)}};
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  const std::string bytes = ReadBytes(path);
  const std::string cut = Path("cut.safetensors");
  for (size_t len = 0; len < bytes.size(); ++len) {
    WriteBytes(cut, bytes.substr(0, len));
    SCOPED_TRACE(len);
    ExpectReadError(cut);
  }
  // Extra bytes after the last tensor are rejected too.
  WriteBytes(cut, bytes + "x");
  ExpectReadError(cut, "trailing");
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFileOrLimit) {
  const std::string path = Path("len.safetensors");
  std::string bytes = FileBytes("{}", "");
  uint64_t huge = 1000;  // file has only 10 bytes
  std::memcpy(bytes.data(), &huge, 8);
  WriteBytes(path, bytes);
  ExpectReadError(path, "exceeds the file size");
  huge = ~0ULL;  // must not try to allocate 16 EiB
  std::memcpy(bytes.data(), &huge, 8);
  WriteBytes(path, bytes);
  ExpectReadError(path, "limit");
  WriteBytes(path, "");
  ExpectReadError(path);
}

TEST_F(SafetensorsTest, MalformedHeadersNameFileAndTensor) {
  const std::string d8(8, '\0'), d16(16, '\0');
  ExpectHeaderError("{\"a\":{\"dtype\":\"F32\",", d8);                         // corrupt JSON
  ExpectHeaderError("[1,2]", "");                                              // not an object
  ExpectHeaderError("{\"__metadata__\":[],\"a\":{}}", d8, "__metadata__");
  ExpectHeaderError("{\"a\":5}", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", d8, "Q7");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", d8,
                    "overflows");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", d8, "'a'");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8, "reversed");
  // Offsets disagreeing with shape * dtype size.
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8, "needs 12");
  ExpectHeaderError(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", d8, "'a'");
  // Out of range.
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8, "exceed");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,0]}})", d8, "'a'");
  // Overlapping, gap, partial cover.
  ExpectHeaderError(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      d16, "overlap");
  ExpectHeaderError(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      d8, "overlap");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d16, "gap");
  ExpectHeaderError(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", d8, "trailing");

  // Sanity: the same shape of header with consistent offsets reads fine.
  const std::string ok = Path("ok.safetensors");
  WriteBytes(ok, FileBytes(R"({"z":{"dtype":"I32","shape":[0],"data_offsets":[0,0]},)"
                           R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           d8));
  absl::StatusOr<TensorMap> r = ReadSafetensors(ok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size(), 2u);
}

// Random byte corruption must give a status (either way), never a crash or a huge allocation.
TEST_F(SafetensorsTest, RandomCorruptionNeverCrashes) {
  const std::string path = Path("fuzz.safetensors");
  TensorMap tensors = {{"w", RandomTensor(DType::kF32, {2, 3}, &rng_)}, {"b", RandomTensor(DType::kBF16, {3}, &rng_)}};
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  const std::string original = ReadBytes(path);
  const std::string fuzz = Path("fuzzed.safetensors");
  int failures = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes = original;
    const int flips = 1 + static_cast<int>(rng_() % 3);
    for (int f = 0; f < flips; ++f) bytes[rng_() % bytes.size()] = static_cast<char>(rng_());
    WriteBytes(fuzz, bytes);
    absl::StatusOr<TensorMap> r = ReadSafetensors(fuzz);
    if (!r.ok()) {
      ++failures;
      EXPECT_THAT(std::string(r.status().message()), HasSubstr(fuzz));
    }
  }
  EXPECT_GT(failures, 0);
}

TEST_F(SafetensorsTest, DirSingleFileWhenSmall) {
  TensorMap tensors = {{"a", RandomTensor(DType::kF32, {4}, &rng_)}, {"b", RandomTensor(DType::kBF16, {8}, &rng_)}};
  ASSERT_TRUE(WriteSafetensorsDir(Path("m"), tensors).ok());
  EXPECT_TRUE(fs::exists(Path("m/model.safetensors")));
  EXPECT_FALSE(fs::exists(Path("m/model.safetensors.index.json")));
  absl::StatusOr<TensorMap> back = ReadSafetensorsDir(Path("m"));
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(tensors, *back);
}

TEST_F(SafetensorsTest, DirShardedRoundTripThroughIndex) {
  TensorMap tensors = {{"a", RandomTensor(DType::kF32, {4}, &rng_)},      // 16 bytes
                       {"b", RandomTensor(DType::kF32, {2}, &rng_)},      // 8: fits with a
                       {"c", RandomTensor(DType::kF32, {10}, &rng_)},     // 40: bigger than the limit, alone
                       {"d", RandomTensor(DType::kBF16, {}, &rng_)},      // 2: starts a new shard after b
                       {"e", RandomTensor(DType::kF16, {0, 3}, &rng_)},   // 0
                       {"f", RandomTensor(DType::kI64, {3}, &rng_)}};     // 24: with d
  const std::string dir = Path("sharded");
  ASSERT_TRUE(WriteSafetensorsDir(dir, tensors, /*max_shard_bytes=*/24).ok());
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));

  nlohmann::json index = nlohmann::json::parse(ReadBytes(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 16 + 8 + 40 + 2 + 0 + 24);
  const auto& wm = index["weight_map"];
  EXPECT_EQ(wm.size(), 6u);
  // huggingface_hub's packing: c is emitted alone when seen; a+b close when d does not fit.
  EXPECT_EQ(wm["c"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(wm["a"], "model-00002-of-00004.safetensors");
  EXPECT_EQ(wm["b"], "model-00002-of-00004.safetensors");
  EXPECT_EQ(wm["d"], "model-00003-of-00004.safetensors");
  EXPECT_EQ(wm["e"], "model-00003-of-00004.safetensors");
  EXPECT_EQ(wm["f"], "model-00004-of-00004.safetensors");
  for (int i = 1; i <= 4; ++i) {
    EXPECT_TRUE(fs::exists(dir + "/model-0000" + std::to_string(i) + "-of-00004.safetensors"));
  }
  absl::StatusOr<TensorMap> back = ReadSafetensorsDir(dir);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(tensors, *back);
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().extension(), ".tmp") << e.path();

  // Re-sharding into fewer files removes the stale shards; a single file removes the index.
  ASSERT_TRUE(WriteSafetensorsDir(dir, tensors, /*max_shard_bytes=*/64).ok());
  EXPECT_FALSE(fs::exists(dir + "/model-00001-of-00004.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/model-00002-of-00002.safetensors"));
  ExpectSame(tensors, *ReadSafetensorsDir(dir));
  ASSERT_TRUE(WriteSafetensorsDir(dir, tensors).ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  ExpectSame(tensors, *ReadSafetensorsDir(dir));
  // And back to shards: the stale single file must go, or it would shadow the index.
  ASSERT_TRUE(WriteSafetensorsDir(dir, tensors, 24).ok());
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  ExpectSame(tensors, *ReadSafetensorsDir(dir));

  EXPECT_FALSE(WriteSafetensorsDir(Path("zero"), tensors, 0).ok());
}

TEST_F(SafetensorsTest, DirErrorsNameTheFileAndTensor) {
  const std::string dir = Path("d");
  absl::StatusOr<TensorMap> r = ReadSafetensorsDir(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);

  TensorMap tensors = {{"a", RandomTensor(DType::kF32, {4}, &rng_)}, {"b", RandomTensor(DType::kF32, {4}, &rng_)}};
  ASSERT_TRUE(WriteSafetensorsDir(dir, tensors, 16).ok());
  const std::string index = dir + "/model.safetensors.index.json";
  const std::string good_index = ReadBytes(index);

  auto expect_error = [&](const std::string& index_text, const std::string& also) {
    WriteBytes(index, index_text);
    absl::StatusOr<TensorMap> res = ReadSafetensorsDir(dir);
    ASSERT_FALSE(res.ok()) << index_text;
    EXPECT_THAT(std::string(res.status().message()), HasSubstr(also)) << res.status();
  };
  expect_error("{not json", "model.safetensors.index.json");
  expect_error(R"({"metadata":{}})", "weight_map");
  expect_error(R"({"weight_map":{"a":3}})", "'a'");
  expect_error(R"({"weight_map":{"a":"../../etc/passwd"}})", "not a plain file name");
  expect_error(R"({"weight_map":{"a":"model-00003-of-00003.safetensors"}})", "model-00003-of-00003.safetensors");
  // The index assigns "b" to the shard that holds only "a".
  expect_error(R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}})",
               "'b'");

  // A corrupt shard: the error names the shard and the index listing it.
  WriteBytes(index, good_index);
  WriteBytes(dir + "/model-00002-of-00002.safetensors", "garbage");
  r = ReadSafetensorsDir(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("index.json"));
}

// The reference file written by PyTorch (tools/make_safetensors_fixture.py).
TEST(TorchFixtureTest, ReadsTorchFileAndMatchesTorchRounding) {
  absl::StatusOr<TensorMap> r = ReadSafetensors(kFixture);
  ASSERT_TRUE(r.ok()) << r.status();
  const TensorMap& m = *r;
  ASSERT_EQ(m.size(), 6u);

  const RawTensor& f32 = m.at("f32");
  ASSERT_EQ(f32.dtype, DType::kF32);
  ASSERT_EQ(f32.shape, std::vector<int64_t>{static_cast<int64_t>(kNumInputs)});
  const std::vector<uint32_t> input_bits = Elements<uint32_t>(f32);
  ASSERT_EQ(input_bits, std::vector<uint32_t>(std::begin(kInputBits), std::end(kInputBits)));
  std::vector<float> inputs(kNumInputs);
  for (size_t i = 0; i < kNumInputs; ++i) inputs[i] = FromBits(kInputBits[i]);

  const std::vector<uint16_t> torch_bf16 = Elements<uint16_t>(m.at("bf16"));
  const std::vector<uint16_t> torch_f16 = Elements<uint16_t>(m.at("f16"));
  const std::vector<uint16_t> ours_bf16 = Elements<uint16_t>(FromFloat32(inputs.data(), {28}, DType::kBF16));
  const std::vector<uint16_t> ours_f16 = Elements<uint16_t>(FromFloat32(inputs.data(), {28}, DType::kF16));
  ASSERT_EQ(torch_bf16.size(), kNumInputs);
  for (size_t i = 0; i < kNumInputs; ++i) {
    SCOPED_TRACE(testing::Message() << "input 0x" << std::hex << kInputBits[i]);
    if (std::isnan(inputs[i])) {
      // PyTorch's vectorized kernel writes 0xFFFF and c10::BFloat16 0x7FC0: both NaN.
      EXPECT_TRUE(std::isnan(BF16BitsToFloat(torch_bf16[i])));
      EXPECT_EQ(ours_bf16[i], 0x7FC0);
    } else {
      EXPECT_EQ(ours_bf16[i], torch_bf16[i]);
    }
    EXPECT_EQ(ours_f16[i], torch_f16[i]);  // NaN included: both give 0x7E00
  }

  // Widening matches torch's f16 -> f32 exactly, and bf16 widening is a shift.
  absl::StatusOr<std::vector<float>> wide = ToFloat32(m.at("f16"));
  ASSERT_TRUE(wide.ok());
  const std::vector<uint32_t> torch_wide = Elements<uint32_t>(m.at("f16_to_f32"));
  absl::StatusOr<std::vector<float>> wide_bf16 = ToFloat32(m.at("bf16"));
  ASSERT_TRUE(wide_bf16.ok());
  for (size_t i = 0; i < kNumInputs; ++i) {
    EXPECT_EQ(ToBits((*wide)[i]), torch_wide[i]) << i;
    EXPECT_EQ(ToBits((*wide_bf16)[i]), static_cast<uint32_t>(torch_bf16[i]) << 16) << i;
  }
  // Spot values a reader should see.
  EXPECT_EQ((*wide)[6], 3.140625f);
  EXPECT_EQ((*wide)[13], INFINITY);
  EXPECT_EQ((*wide_bf16)[8], 1.015625f);

  EXPECT_EQ(Elements<int64_t>(m.at("i64")), (std::vector<int64_t>{1, -2, 3, -(int64_t{1} << 40)}));
  EXPECT_EQ(m.at("i64").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_TRUE(m.at("scalar_f64").shape.empty());
  absl::StatusOr<std::vector<float>> scalar = ToFloat32(m.at("scalar_f64"));
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(*scalar, std::vector<float>{2.5f});
}

TEST(FloatConversionTest, EveryHalfAndBFloat16RoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f16 = F16BitsToFloat(static_cast<uint16_t>(h));
    const float bf16 = BF16BitsToFloat(static_cast<uint16_t>(h));
    if (!std::isnan(f16)) {
      EXPECT_EQ(FloatToF16Bits(f16), h) << h;
    }
    if (!std::isnan(bf16)) {
      EXPECT_EQ(FloatToBF16Bits(bf16), h) << h;
    }
  }
  EXPECT_EQ(F16BitsToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F16BitsToFloat(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(F16BitsToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(FloatToF16Bits(-NAN) & 0x8000, 0x8000);
  EXPECT_TRUE(std::isnan(F16BitsToFloat(FloatToF16Bits(NAN))));
  EXPECT_TRUE(std::isnan(BF16BitsToFloat(FloatToBF16Bits(-NAN))));
}

// Random float32 values against independent references: the compiler's _Float16 (libgcc
// soft-float, round-to-nearest-even) for F16, and a nearest-neighbour search for BF16.
TEST(FloatConversionTest, RandomValuesMatchReferences) {
  std::mt19937 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t bits = rng();
    const float f = FromBits(bits);
    if (std::isnan(f)) continue;
#if defined(__FLT16_MAX__)
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    ASSERT_EQ(FloatToF16Bits(f), ref_bits) << std::hex << bits;
    ASSERT_EQ(ToBits(F16BitsToFloat(ref_bits)), ToBits(static_cast<float>(ref))) << std::hex << bits;
#endif
    // BF16: the two candidates truncate toward zero and away; pick the nearer, ties to even.
    // Past the largest finite value the next grid point is 2^128, which encodes as inf.
    const uint32_t lo = bits >> 16, hi = lo + 1;
    const double lo_value = BF16BitsToFloat(static_cast<uint16_t>(lo));
    const double hi_value = (hi & 0x7FFF) == 0x7F80 ? std::copysign(std::ldexp(1.0, 128), f)
                                                    : BF16BitsToFloat(static_cast<uint16_t>(hi));
    const double dlo = std::fabs(double{f} - lo_value);
    const double dhi = std::fabs(hi_value - double{f});
    const uint32_t expect = (dlo < dhi || (dlo == dhi && (lo & 1) == 0)) ? lo : hi;
    ASSERT_EQ(FloatToBF16Bits(f), expect) << std::hex << bits;
  }
}

TEST(FloatConversionTest, ToFloat32AndFromFloat32) {
  const std::vector<float> values = {1.5f, -2.25f, 0.1f, 1e-30f};
  for (DType d : {DType::kF32, DType::kF64, DType::kF16, DType::kBF16}) {
    RawTensor t = FromFloat32(values.data(), {2, 2}, d);
    EXPECT_EQ(t.dtype, d);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(t.data.size(), 4 * DTypeSize(d));
    absl::StatusOr<std::vector<float>> back = ToFloat32(t);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ((*back)[0], 1.5f);
    EXPECT_EQ((*back)[1], -2.25f);
    if (d == DType::kF32 || d == DType::kF64) {
      EXPECT_EQ(*back, values);
    }
  }
  EXPECT_TRUE(FromFloat32(nullptr, {0, 7}, DType::kBF16).data.empty());
  EXPECT_EQ(FromFloat32(values.data(), {}, DType::kF16).data.size(), 2u);

  EXPECT_FALSE(ToFloat32(RawTensor{DType::kI32, {1}, {0, 0, 0, 0}}).ok());
  EXPECT_FALSE(ToFloat32(RawTensor{DType::kF32, {2}, {0, 0, 0, 0}}).ok());
  EXPECT_DEATH(FromFloat32(values.data(), {4}, DType::kI32), "precondition");
}

}  // namespace
}  // namespace hone
