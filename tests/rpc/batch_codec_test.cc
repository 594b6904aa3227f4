// Batch <-> proto: exact round trips of every dtype, the pinned wire layout, rejection of
// malformed messages, and random mutations that must never crash the decoder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "framework/rpc/rpc.h"

namespace hone::rpc {
namespace {

using ::testing::HasSubstr;

// A tensor of `dtype` built from raw 16-bit patterns (bfloat16 / float16).
torch::Tensor FromBits16(const std::vector<int16_t>& bits, torch::ScalarType dtype) {
  return torch::tensor(std::vector<int64_t>(bits.begin(), bits.end()), torch::kInt64)
      .to(torch::kInt16)
      .view(dtype);
}

Batch RoundTrip(const Batch& batch) {
  proto::Batch msg;
  absl::Status s = BatchToProto(batch, &msg);
  EXPECT_TRUE(s.ok()) << s;
  // Through the real wire bytes, not just the in-memory message.
  std::string wire;
  EXPECT_TRUE(msg.SerializeToString(&wire));
  proto::Batch parsed;
  EXPECT_TRUE(parsed.ParseFromString(wire));
  absl::StatusOr<Batch> back = BatchFromProto(parsed);
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *std::move(back) : Batch();
}

TEST(BatchCodec, WireLayoutIsLittleEndianRowMajor) {
  proto::Tensor msg;
  ASSERT_TRUE(TensorToProto("x", torch::tensor({1.0f, -2.0f}), &msg).ok());
  EXPECT_EQ(msg.name(), "x");
  EXPECT_EQ(msg.dtype(), "float32");
  EXPECT_THAT(msg.shape(), ::testing::ElementsAre(2));
  // 1.0f = 0x3F800000, -2.0f = 0xC0000000, least significant byte first.
  EXPECT_EQ(msg.data(), std::string("\x00\x00\x80\x3F\x00\x00\x00\xC0", 8));

  ASSERT_TRUE(TensorToProto("i", torch::tensor({int64_t{0x0102030405060708}}), &msg).ok());
  EXPECT_EQ(msg.dtype(), "int64");
  EXPECT_EQ(msg.data(), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));

  // A transposed (non-contiguous) tensor goes out row-major in its logical order.
  torch::Tensor m = torch::tensor({1, 2, 3, 4, 5, 6}, torch::kInt32).view({2, 3}).t();  // [[1,4],[2,5],[3,6]]
  ASSERT_FALSE(m.is_contiguous());
  ASSERT_TRUE(TensorToProto("m", m, &msg).ok());
  EXPECT_THAT(msg.shape(), ::testing::ElementsAre(3, 2));
  std::vector<int32_t> want = {1, 4, 2, 5, 3, 6};
  ASSERT_EQ(msg.data().size(), want.size() * 4);
  EXPECT_EQ(std::memcmp(msg.data().data(), want.data(), msg.data().size()), 0);
}

TEST(BatchCodec, EveryDtypeRoundTripsBitExactly) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float denorm = std::numeric_limits<float>::denorm_min();
  Batch batch;
  // Three rows each; columns of several widths.
  ASSERT_TRUE(batch.SetTensor("f32", torch::tensor({1.5f, -0.0f, inf, nan, denorm, -3.25f}).view({3, 2})).ok());
  ASSERT_TRUE(batch.SetTensor("f64", torch::tensor({0.1, -1e300, 5e-324}, torch::kFloat64)).ok());
  // bfloat16 1.0 = 0x3F80, -2.0 = 0xC000, +inf = 0x7F80, a NaN payload 0x7FC1, smallest
  // subnormal 0x0001, -0 = 0x8000.
  const std::vector<int16_t> bf16_bits = {0x3F80, static_cast<int16_t>(0xC000), 0x7F80,
                                          0x7FC1, 0x0001, static_cast<int16_t>(0x8000)};
  ASSERT_TRUE(batch.SetTensor("bf16", FromBits16(bf16_bits, torch::kBFloat16).view({3, 2})).ok());
  // float16 1.0 = 0x3C00, 65504 = 0x7BFF, a NaN payload 0x7E01.
  const std::vector<int16_t> f16_bits = {0x3C00, 0x7BFF, 0x7E01};
  ASSERT_TRUE(batch.SetTensor("f16", FromBits16(f16_bits, torch::kFloat16).view({3, 1, 1})).ok());
  ASSERT_TRUE(batch.SetTensor("i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1},
                                                    std::numeric_limits<int64_t>::max()})).ok());
  ASSERT_TRUE(batch.SetTensor("i32", torch::tensor({-7, 0, 2147483647}, torch::kInt32)).ok());
  ASSERT_TRUE(batch.SetTensor("u8", torch::tensor({0, 128, 255}, torch::kInt64).to(torch::kUInt8)).ok());
  ASSERT_TRUE(batch.SetTensor("b", torch::tensor({true, false, true})).ok());
  ASSERT_TRUE(batch.SetStrings("text", {"", "héllo wörld 数学 🙂", std::string("cut\xE6\x95", 5)}).ok());
  ASSERT_TRUE(batch.SetInts("group", {7, -1, std::numeric_limits<int64_t>::max()}).ok());
  batch.meta["policy_version"] = "12";
  batch.meta["note"] = "ünïcode";
  batch.meta[""] = "";

  Batch back = RoundTrip(batch);
  ASSERT_EQ(back.size(), 3);
  EXPECT_EQ(back.TensorNames(), batch.TensorNames());
  EXPECT_EQ(back.StringNames(), (std::vector<std::string>{"text"}));
  EXPECT_EQ(back.IntNames(), (std::vector<std::string>{"group"}));

  // float32: the original literals, element by element, with -0 and NaN by bit pattern.
  const torch::Tensor& f32 = back.tensor("f32");
  ASSERT_EQ(f32.scalar_type(), torch::kFloat32);
  ASSERT_EQ(f32.sizes(), torch::IntArrayRef({3, 2}));
  const float* p = f32.data_ptr<float>();
  const float want_f32[] = {1.5f, -0.0f, inf, nan, denorm, -3.25f};
  EXPECT_EQ(std::memcmp(p, want_f32, sizeof(want_f32)), 0);
  EXPECT_TRUE(std::signbit(p[1]));
  EXPECT_TRUE(std::isnan(p[3]));
  EXPECT_EQ(p[4], denorm);

  const torch::Tensor& f64 = back.tensor("f64");
  ASSERT_EQ(f64.scalar_type(), torch::kFloat64);
  EXPECT_EQ(f64.data_ptr<double>()[0], 0.1);
  EXPECT_EQ(f64.data_ptr<double>()[1], -1e300);
  EXPECT_EQ(f64.data_ptr<double>()[2], 5e-324);

  // 16-bit floats: compare the raw bit patterns with the literals above.
  for (const auto& [name, dtype, bits, shape] :
       {std::make_tuple("bf16", torch::kBFloat16, bf16_bits, std::vector<int64_t>{3, 2}),
        std::make_tuple("f16", torch::kFloat16, f16_bits, std::vector<int64_t>{3, 1, 1})}) {
    const torch::Tensor& t = back.tensor(name);
    ASSERT_EQ(t.scalar_type(), dtype) << name;
    EXPECT_EQ(t.sizes(), torch::IntArrayRef(shape)) << name;
    std::vector<int16_t> got(t.numel());
    std::memcpy(got.data(), t.data_ptr(), got.size() * 2);
    EXPECT_EQ(got, bits) << name;
  }
  EXPECT_EQ(back.tensor("bf16").view({-1})[0].item<float>(), 1.0f);
  EXPECT_EQ(back.tensor("f16").view({-1})[1].item<float>(), 65504.0f);

  const torch::Tensor& i64 = back.tensor("i64");
  ASSERT_EQ(i64.scalar_type(), torch::kInt64);
  EXPECT_EQ(i64[0].item<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(i64[1].item<int64_t>(), -1);
  EXPECT_EQ(i64[2].item<int64_t>(), std::numeric_limits<int64_t>::max());
  const torch::Tensor& i32 = back.tensor("i32");
  ASSERT_EQ(i32.scalar_type(), torch::kInt32);
  EXPECT_EQ(std::vector<int32_t>(i32.data_ptr<int32_t>(), i32.data_ptr<int32_t>() + 3),
            (std::vector<int32_t>{-7, 0, 2147483647}));
  const torch::Tensor& u8 = back.tensor("u8");
  ASSERT_EQ(u8.scalar_type(), torch::kUInt8);
  EXPECT_EQ(std::vector<uint8_t>(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + 3),
            (std::vector<uint8_t>{0, 128, 255}));
  const torch::Tensor& b = back.tensor("b");
  ASSERT_EQ(b.scalar_type(), torch::kBool);
  EXPECT_EQ(std::vector<bool>(b.data_ptr<bool>(), b.data_ptr<bool>() + 3), (std::vector<bool>{true, false, true}));

  EXPECT_EQ(back.strings("text"),
            (std::vector<std::string>{"", "héllo wörld 数学 🙂", std::string("cut\xE6\x95", 5)}));
  EXPECT_EQ(back.ints("group"), (std::vector<int64_t>{7, -1, std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(back.meta, (std::map<std::string, std::string>{{"policy_version", "12"}, {"note", "ünïcode"}, {"", ""}}));
}

TEST(BatchCodec, EmptyBatchAndZeroRowColumns) {
  Batch empty;
  empty.meta["k"] = "v";
  Batch back = RoundTrip(empty);
  EXPECT_EQ(back.size(), 0);
  EXPECT_TRUE(back.TensorNames().empty());
  EXPECT_TRUE(back.StringNames().empty());
  EXPECT_TRUE(back.IntNames().empty());
  EXPECT_EQ(back.meta.at("k"), "v");

  Batch zero;
  ASSERT_TRUE(zero.SetTensor("ids", torch::zeros({0, 5}, torch::kInt64)).ok());
  ASSERT_TRUE(zero.SetTensor("mask", torch::zeros({0}, torch::kBool)).ok());
  ASSERT_TRUE(zero.SetStrings("text", {}).ok());
  ASSERT_TRUE(zero.SetInts("group", {}).ok());
  back = RoundTrip(zero);
  EXPECT_EQ(back.size(), 0);
  EXPECT_EQ(back.tensor("ids").sizes(), torch::IntArrayRef({0, 5}));
  EXPECT_EQ(back.tensor("ids").scalar_type(), torch::kInt64);
  EXPECT_EQ(back.tensor("mask").sizes(), torch::IntArrayRef({0}));
  EXPECT_TRUE(back.strings("text").empty());
  EXPECT_TRUE(back.ints("group").empty());
}

TEST(BatchCodec, TensorToProtoRejectsWhatHasNoWireFormat) {
  proto::Tensor msg;
  absl::Status s = TensorToProto("half_int", torch::zeros({2}, torch::kInt16), &msg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("half_int"));
  s = TensorToProto("none", torch::Tensor(), &msg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("none"));
  // A 0-dim tensor is a valid Tensor message (a Batch column is not).
  ASSERT_TRUE(TensorToProto("scalar", torch::tensor(2.5), &msg).ok());
  EXPECT_EQ(msg.shape_size(), 0);
  absl::StatusOr<torch::Tensor> t = TensorFromProto(msg);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dim(), 0);
  EXPECT_EQ(t->item<float>(), 2.5f);
}

// A valid two-row message to break in the tests below.
proto::Batch ValidMessage() {
  Batch batch;
  EXPECT_TRUE(batch.SetTensor("logprobs", torch::tensor({0.5f, -1.0f, 2.0f, 4.0f}).view({2, 2})).ok());
  EXPECT_TRUE(batch.SetTensor("mask", torch::tensor({true, false})).ok());
  EXPECT_TRUE(batch.SetStrings("prompt", {"1+1=", "2*3="}).ok());
  EXPECT_TRUE(batch.SetInts("group", {0, 1}).ok());
  batch.meta["v"] = "1";
  proto::Batch msg;
  EXPECT_TRUE(BatchToProto(batch, &msg).ok());
  return msg;
}

proto::Tensor* Find(proto::Batch* msg, const std::string& name) {
  for (proto::Tensor& t : *msg->mutable_tensors()) {
    if (t.name() == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

void ExpectInvalid(const proto::Batch& msg, const std::string& mention) {
  absl::StatusOr<Batch> got = BatchFromProto(msg);
  ASSERT_FALSE(got.ok()) << "accepted a message that should fail naming " << mention;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr(mention)) << got.status();
}

TEST(BatchCodec, MalformedMessagesAreRejectedNamingTheColumn) {
  ASSERT_TRUE(BatchFromProto(ValidMessage()).ok());
  {
    proto::Batch msg = ValidMessage();
    Find(&msg, "logprobs")->mutable_data()->pop_back();  // 15 bytes for 4 floats
    ExpectInvalid(msg, "logprobs");
  }
  {
    proto::Batch msg = ValidMessage();
    Find(&msg, "logprobs")->mutable_data()->append("\0\0\0\0", 4);  // 20 bytes
    ExpectInvalid(msg, "logprobs");
  }
  {
    proto::Batch msg = ValidMessage();
    Find(&msg, "logprobs")->set_dtype("complex64");
    ExpectInvalid(msg, "logprobs");
    Find(&msg, "logprobs")->set_dtype("");
    ExpectInvalid(msg, "logprobs");
  }
  {
    proto::Batch msg = ValidMessage();
    Find(&msg, "logprobs")->set_shape(1, -2);
    ExpectInvalid(msg, "logprobs");
  }
  {
    // Dims whose product overflows int64 even though each one fits; the data matches what
    // a wrapped-around product (2^62 * 4 = 0 mod 2^64) would expect.
    proto::Batch msg = ValidMessage();
    proto::Tensor* t = Find(&msg, "logprobs");
    t->clear_shape();
    t->add_shape(2);
    t->add_shape(int64_t{1} << 62);
    t->add_shape(4);
    t->clear_data();
    ExpectInvalid(msg, "logprobs");
    // ... and a product that fits in int64 but not once multiplied by the item size.
    t->clear_shape();
    t->add_shape(int64_t{1} << 62);
    ExpectInvalid(msg, "logprobs");
    // ... and a zero dim next to huge ones (numel 0, but strides would overflow).
    t->clear_shape();
    t->add_shape(0);
    t->add_shape(std::numeric_limits<int64_t>::max());
    t->add_shape(std::numeric_limits<int64_t>::max());
    ExpectInvalid(msg, "logprobs");
  }
  {
    proto::Batch msg = ValidMessage();
    Find(&msg, "mask")->set_data(std::string("\x01\x02", 2));  // 2 is not a bool
    ExpectInvalid(msg, "mask");
  }
  {
    // Row count mismatches: a tensor, a string column, an int column, and `rows` itself.
    proto::Batch msg = ValidMessage();
    proto::Tensor* t = Find(&msg, "mask");
    t->set_shape(0, 3);
    t->set_data(std::string("\x01\x00\x01", 3));
    ExpectInvalid(msg, "mask");
  }
  {
    proto::Batch msg = ValidMessage();
    msg.mutable_strings(0)->add_values("extra");
    ExpectInvalid(msg, "prompt");
  }
  {
    proto::Batch msg = ValidMessage();
    msg.mutable_ints(0)->mutable_values()->RemoveLast();
    ExpectInvalid(msg, "group");
  }
  {
    proto::Batch msg = ValidMessage();
    msg.set_rows(3);
    ExpectInvalid(msg, "logprobs");  // the first column checked
    msg.set_rows(-1);
    ExpectInvalid(msg, "-1 rows");
  }
  {
    proto::Batch msg;
    msg.set_rows(4);
    ExpectInvalid(msg, "no columns");
  }
  {
    proto::Batch msg = ValidMessage();
    proto::Tensor* t = Find(&msg, "mask");
    t->clear_shape();  // a 0-dim tensor: one byte of data, no row dimension
    t->set_data(std::string("\x01", 1));
    ExpectInvalid(msg, "mask");
  }
  {
    proto::Batch msg = ValidMessage();
    *msg.add_tensors() = *Find(&msg, "logprobs");
    ExpectInvalid(msg, "logprobs");
    msg = ValidMessage();
    *msg.add_strings() = msg.strings(0);
    ExpectInvalid(msg, "prompt");
    msg = ValidMessage();
    *msg.add_ints() = msg.ints(0);
    ExpectInvalid(msg, "group");
  }
}

// Decoding either succeeds with a consistent Batch or fails with INVALID_ARGUMENT.
void ExpectSafe(const proto::Batch& msg) {
  absl::StatusOr<Batch> got = BatchFromProto(msg);
  if (got.ok()) {
    EXPECT_TRUE(got->Validate().ok());
    EXPECT_EQ(got->size(), msg.rows());
  } else {
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  }
}

TEST(BatchCodec, RandomByteMutationsNeverCrash) {
  std::string wire;
  ASSERT_TRUE(ValidMessage().SerializeToString(&wire));
  std::mt19937_64 rng(20240611);
  // Mutated text fields are often invalid UTF-8; protobuf logs each such parse failure.
  google::protobuf::LogSilencer quiet;
  int parsed = 0;
  int decoded = 0;
  int rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string bytes = wire;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[pos] = static_cast<char>(rng()); break;                  // overwrite
        case 1: bytes[pos] ^= static_cast<char>(1 << (rng() % 8)); break;      // flip a bit
        case 2: bytes.insert(pos, 1, static_cast<char>(rng())); break;         // insert
        default: bytes.erase(pos, 1 + rng() % 3); break;                       // delete
      }
      if (bytes.empty()) bytes = "x";
    }
    proto::Batch msg;
    if (!msg.ParseFromString(bytes)) continue;
    ++parsed;
    absl::StatusOr<Batch> got = BatchFromProto(msg);
    (got.ok() ? decoded : rejected) += 1;
    ExpectSafe(msg);
  }
  // The loop must have exercised the decoder, both ways, not only the parser.
  EXPECT_GT(parsed, 1000);
  EXPECT_GT(decoded, 100);
  EXPECT_GT(rejected, 100);
}

TEST(BatchCodec, RandomShapesAndDataLengthsNeverCrash) {
  // Byte mutations rarely produce meaningful shapes; draw them directly.
  std::mt19937_64 rng(7);
  const char* dtypes[] = {"float32", "float64", "bfloat16", "float16", "int64", "int32", "uint8", "bool", "x"};
  const int64_t dims[] = {0, 1, 2, 3, -1, -5, 1 << 20, int64_t{1} << 31, int64_t{1} << 40,
                          std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  for (int iter = 0; iter < 3000; ++iter) {
    proto::Batch msg;
    msg.set_rows(static_cast<int64_t>(rng() % 4) - 1);
    int ntensors = static_cast<int>(rng() % 3);
    for (int i = 0; i < ntensors; ++i) {
      proto::Tensor* t = msg.add_tensors();
      t->set_name(absl::StrCat("t", rng() % 2));
      t->set_dtype(dtypes[rng() % 9]);
      int ndim = static_cast<int>(rng() % 4);
      for (int d = 0; d < ndim; ++d) {
        t->add_shape(rng() % 3 == 0 ? dims[rng() % 11] : static_cast<int64_t>(rng() % 4));
      }
      t->set_data(std::string(rng() % 40, static_cast<char>(rng() % 2)));
    }
    if (rng() % 2) {
      proto::StringColumn* s = msg.add_strings();
      s->set_name("s");
      for (uint64_t r = rng() % 3; r > 0; --r) s->add_values("v");
    }
    ExpectSafe(msg);
  }
}

}  // namespace
}  // namespace hone::rpc
