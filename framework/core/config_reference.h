// docs/config_reference.md, rendered from the schema: every key with its type, default,
// allowed values and meaning. A test compares the committed page with this rendering, so
// the page cannot drift from the schema.
#pragma once

#include <string>

#include "framework/core/config.h"

namespace hone {

// Markdown: one section per top-level group (data, rollout, ...) in schema order, one
// table row per key.
std::string ConfigReferenceMarkdown(const ConfigSchema& schema);

}  // namespace hone
