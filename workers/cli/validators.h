// Option checks whose messages read well. CLI11's own numeric Range prints its bounds
// with std::to_string, so an unbounded check reads "not in range 0.000000 to 1797693...";
// and an unsigned option silently wraps "-1" to 18446744073709551615.
#pragma once

#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "framework/core/config.h"

namespace hone::cli {

// A number in [min, max] (either side open when not given), e.g. "must be >= 0".
inline CLI::Validator NumberIn(std::optional<double> min, std::optional<double> max) {
  std::string bounds;
  if (min && max) {
    bounds = "between " + FormatConfigNumber(*min) + " and " + FormatConfigNumber(*max);
  } else if (min) {
    bounds = ">= " + FormatConfigNumber(*min);
  } else if (max) {
    bounds = "<= " + FormatConfigNumber(*max);
  }
  return CLI::Validator(
      [min, max, bounds](std::string& input) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(input.c_str(), &end);
        if (input.empty() || *end != '\0') return "'" + input + "' is not a number";
        if ((min && value < *min) || (max && value > *max) || value != value) {
          return "value " + input + " is out of range: must be " + bounds;
        }
        return std::string();
      },
      bounds.empty() ? "NUMBER" : "NUMBER " + bounds);
}

inline CLI::Validator NonNegative() { return NumberIn(0.0, std::nullopt); }

// A seed: a non-negative integer (CLI11 would read "-1" into a uint64_t as 2^64 - 1).
inline CLI::Validator SeedValue() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        if (input.empty() || input.find_first_not_of("0123456789") != std::string::npos) {
          return "'" + input + "' is not a seed: a non-negative integer";
        }
        return std::string();
      },
      "SEED >= 0");
}

}  // namespace hone::cli
