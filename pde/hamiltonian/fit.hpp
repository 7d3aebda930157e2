#pragma once
// A small Adam training loop shared by the Hamiltonian examples (HNN, SympNets, LNN): the
// caller supplies the loss of one step (full batch or a minibatch chosen from the step
// number) and, optionally, a test metric evaluated every log_every steps. Shows a progress
// line with rate and ETA on a terminal.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.hpp"

namespace symgrad::pde::hamiltonian {

struct FitOptions {
  std::int64_t steps = 2000;
  double lr = 1e-3;
  double weight_decay = 0;
  std::function<double(std::int64_t step)> lr_at;  // optional schedule; overrides lr when set
  std::int64_t log_every = 100;   // history and test metric every log_every steps (and the last)
  std::string label;              // shown in the progress line
  bool progress = true;           // progress line on stderr when it is a terminal
};

struct FitHistory {
  std::vector<std::int64_t> step;
  std::vector<double> train_loss, test_loss;  // test_loss NaN when no test metric was given
  double seconds = 0;
  double final_train_loss() const;
  double final_test_loss() const;
  nlohmann::json to_json() const;
};

// Runs `steps` Adam steps on model.parameters(): zero_grad, loss = train_loss(step) (a scalar
// tensor), backward, step. Throws std::runtime_error naming the step if the loss is not finite.
FitHistory fit_adam(nn::Module& model, const std::function<Tensor(std::int64_t step)>& train_loss,
                    const std::function<double()>& test_loss, const FitOptions& options);

}  // namespace symgrad::pde::hamiltonian
