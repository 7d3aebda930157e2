// A tour of symgrad's engine, meant to be read top to bottom.
//
//   1. build a tiny expression and print it
//   2. backpropagate and read the gradients
//   3. write the graph as Graphviz DOT
//   4. take a second derivative (grad of grad)
//   5. fit a two-layer network with hand-written SGD
//
// Run: ./build/examples/engine_tour [output-dir]   (writes engine_tour.dot there)
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include "engine/engine.hpp"

using namespace symgrad;

int main(int argc, char** argv) {
  const std::string out_dir = argc > 1 ? argv[1] : ".";

  // 1. A tiny expression. Leaves that we want gradients for are marked requires_grad.
  //    Every op on them records a node in a graph, so the result remembers how it was made.
  Tensor x = tensor({2.0}, {}, DType::f64).requires_grad_();
  Tensor y = tensor({3.0}, {}, DType::f64).requires_grad_();
  Tensor z = x * y + sin(x);
  std::cout << "1. z = x * y + sin(x) with x = 2, y = 3\n   z = " << z << "\n\n";

  // 2. backward() walks the graph from z to the leaves and accumulates dz/dleaf into .grad.
  //    dz/dx = y + cos(x) = 3 + cos 2,  dz/dy = x = 2.
  backward(z, Tensor(), {.retain_graph = true});
  std::cout << "2. backward(z)\n   dz/dx = " << x.grad() << "   (y + cos x = " << 3.0 + std::cos(2.0)
            << ")\n   dz/dy = " << y.grad() << "\n\n";

  // 3. The same graph as a picture: render with `dot -Tpng engine_tour.dot -o tour.png`.
  const std::string dot_path = out_dir + "/engine_tour.dot";
  write_dot(z, dot_path, "z = x * y + sin(x)");
  std::cout << "3. graph written to " << dot_path << "\n\n";

  // 4. Gradients are themselves built from ops, so with create_graph = true the first
  //    derivative is a graph we can differentiate again. For f = x^3: f' = 3x^2, f'' = 6x.
  Tensor f = pow(x, 3.0);
  Tensor df = grad({f}, {x}, {}, {.create_graph = true})[0];
  Tensor d2f = grad({df}, {x})[0];
  std::cout << "4. f = x^3 at x = 2:  f' = " << df.item() << " (12),  f'' = " << d2f.item() << " (12)\n\n";

  // 5. Fit y = sin(3 t) on [-1, 1] with a 1-32-1 tanh network, full batch, plain SGD.
  Generator gen(7);
  Tensor t = reshape(linspace(-1.0, 1.0, 64), {64, 1});
  Tensor target = sin(3.0 * t);
  Tensor w1 = normal({1, 32}, 0.0, 1.0, gen).requires_grad_();
  Tensor b1 = zeros({32}).requires_grad_();
  Tensor w2 = normal({32, 1}, 0.0, 1.0 / std::sqrt(32.0), gen).requires_grad_();
  Tensor b2 = zeros({1}).requires_grad_();
  const double learning_rate = 0.1;
  std::cout << "5. fitting sin(3t) with a 1-32-1 tanh network (SGD, lr " << learning_rate << ")\n";
  for (int step = 0; step <= 2000; ++step) {
    Tensor hidden = tanh(matmul(t, w1) + b1);
    Tensor prediction = matmul(hidden, w2) + b2;
    Tensor loss = mean(square(prediction - target));
    for (Tensor* p : {&w1, &b1, &w2, &b2}) p->zero_grad();
    backward(loss);
    // The update itself must not be recorded: it is arithmetic on numbers, not part of
    // the model. Each parameter becomes a fresh leaf holding the new values.
    {
      NoGradGuard no_grad;
      for (Tensor* p : {&w1, &b1, &w2, &b2}) *p = (*p - learning_rate * p->grad()).detach().requires_grad_();
    }
    if (step % 400 == 0) std::printf("   step %4d  loss %.6f\n", step, loss.item());
  }
  return 0;
}
