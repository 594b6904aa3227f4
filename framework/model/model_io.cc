// Loading and saving the policy in Hugging Face layout (config.json + safetensors).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "framework/model/model.h"
#include "framework/model/safetensors.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<torch::Dtype> TorchDtypeOf(DType dtype) {
  switch (dtype) {
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kF64: return torch::kFloat64;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dtype ", std::string(DTypeName(dtype)), " is not a floating-point weight type"));
  }
}

// Copies the bytes of a safetensors tensor into a fresh torch tensor of the same dtype.
absl::StatusOr<torch::Tensor> ToTorch(const RawTensor& raw) {
  HONE_ASSIGN_OR_RETURN(torch::Dtype dtype, TorchDtypeOf(raw.dtype));
  auto tensor = torch::empty(raw.shape, torch::TensorOptions().dtype(dtype));
  if (static_cast<size_t>(tensor.nbytes()) != raw.data.size()) {
    return absl::InternalError("tensor byte size does not match its shape");
  }
  std::memcpy(tensor.data_ptr(), raw.data.data(), raw.data.size());
  return tensor;
}

RawTensor FromTorch(const torch::Tensor& tensor, DType dtype, torch::Dtype torch_dtype) {
  auto cpu = tensor.detach().to(torch::kCPU).to(torch_dtype).contiguous();
  RawTensor raw;
  raw.dtype = dtype;
  raw.shape = cpu.sizes().vec();
  raw.data.resize(cpu.nbytes());
  std::memcpy(raw.data.data(), cpu.data_ptr(), cpu.nbytes());
  return raw;
}

absl::Status WriteFileAtomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CausalLM> LoadModel(const std::string& dir, torch::Dtype dtype) {
  HONE_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig((fs::path(dir) / "config.json").string()));
  HONE_ASSIGN_OR_RETURN(TensorMap tensors, ReadSafetensorsDir(dir));
  CausalLM model(config);
  absl::Status status = CatchTorch(absl::StrCat("loading weights from ", dir), [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    std::set<std::string> used;
    for (auto& item : model->named_parameters()) {
      auto it = tensors.find(item.key());
      if (it == tensors.end()) {
        return absl::NotFoundError(absl::StrCat("model in ", dir, " lacks tensor '", item.key(),
                                                "' (is config.json the right one for these weights?)"));
      }
      HONE_ASSIGN_OR_RETURN(torch::Tensor value, ToTorch(it->second));
      if (value.sizes() != item.value().sizes()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", item.key(), "' in ", dir, " has shape [",
                         absl::StrJoin(value.sizes().vec(), ","), "], config.json implies [",
                         absl::StrJoin(item.value().sizes().vec(), ","), "]"));
      }
      item.value().copy_(value);
      used.insert(item.key());
    }
    for (const auto& [name, raw] : tensors) {
      if (used.count(name)) continue;
      if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
      if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
      return absl::InvalidArgumentError(
          absl::StrCat("model in ", dir, " has tensor '", name, "' that this architecture does not use"));
    }
    model->to(dtype);
    return absl::OkStatus();
  });
  HONE_RETURN_IF_ERROR(status);
  return model;
}

absl::Status SaveModel(CausalLM& model, const std::string& dir, const std::string& save_dtype) {
  HONE_ASSIGN_OR_RETURN(DType dtype, ParseDType(save_dtype));
  HONE_ASSIGN_OR_RETURN(torch::Dtype torch_dtype, TorchDtypeOf(dtype));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  TensorMap tensors;
  HONE_RETURN_IF_ERROR(CatchTorch(absl::StrCat("saving model to ", dir), [&] {
    for (const auto& item : model->named_parameters()) {
      tensors[item.key()] = FromTorch(item.value(), dtype, torch_dtype);
    }
  }));
  ModelConfig config = model->config();
  config.torch_dtype = save_dtype == "BF16" ? "bfloat16" : save_dtype == "F16" ? "float16" : "float32";
  HONE_RETURN_IF_ERROR(WriteSafetensorsDir(dir, tensors));
  return WriteFileAtomically(fs::path(dir) / "config.json", ModelConfigToJson(config));
}

}  // namespace hone
