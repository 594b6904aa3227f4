// Turns exceptions thrown inside libtorch calls into an absl::Status at a module boundary.
#pragma once

#include <exception>
#include <type_traits>

#include "framework/core/status.h"

namespace hone {

// Runs `fn` (returning absl::Status or void); a thrown std::exception becomes an
// Internal error carrying `context` and the exception's message.
template <typename Fn>
absl::Status CatchTorch(absl::string_view context, Fn&& fn) {
  try {
    if constexpr (std::is_same_v<decltype(fn()), void>) {
      fn();
      return absl::OkStatus();
    } else {
      return fn();
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  }
}

}  // namespace hone
