// LLaMA (llama2.c checkpoints) on lowbit: the checkpoint loader, the tokenizer and the
// forward pass with quantised linear layers and attention.
#pragma once

#include "lowbit/nn/llama_checkpoint.hpp"
#include "lowbit/nn/llama_model.hpp"
#include "lowbit/nn/llama_tokenizer.hpp"
