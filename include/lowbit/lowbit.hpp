// lowbit: low-bit number formats for LLM inference. Including this header brings in all of it
// except the file readers and writers in lowbit/io/ (include those on their own; safetensors
// and GGUF need nlohmann-json).
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/core/rounding.hpp"
#include "lowbit/formats/standard.hpp"
#include "lowbit/gemm/matmul.hpp"
#include "lowbit/gemm/matmul_reference.hpp"
#include "lowbit/gemm/panel_matrix.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/nn/eval.hpp"
#include "lowbit/nn/llama.hpp"
#include "lowbit/nn/quant_attention.hpp"
#include "lowbit/nn/quant_linear.hpp"
#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/eigen.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/metrics.hpp"
#include "lowbit/quant/registry.hpp"
