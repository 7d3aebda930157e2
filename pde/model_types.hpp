#pragma once
// Makes pde's models buildable from JSON by nn::build_model (and so by the symgrad CLI's
// configs): registers "PDEResNet" (see pde_resnet_config_from_json). nn cannot know pde
// (layers depend downward only), so pde adds itself; calling this more than once is harmless.
namespace symgrad::pde {

void register_model_types();

}  // namespace symgrad::pde
