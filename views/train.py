"""Train: a small model with and without activated gradients, and how their decision boundaries differ."""

from __future__ import annotations

import streamlit as st

from geometry.figures.slices import slice_figure
from geometry.figures.training import gradient_activation_figure, margin_comparison, training_curves
from geometry.slices.stats import region_iou
from ui import page, state
from ui import train as U

st.title("Train")
st.caption(
    "Train a small classifier on a built-in data set **with activated gradients** (Liu et al.: every gradient g "
    "passes through α·arctan(β·g) before the optimizer step, which enlarges tiny gradients and bounds large "
    "ones) and, beside it, the same model trained plainly from the same seed, then compare the boundaries they "
    "draw. Trained models are kept on this machine and appear in the sidebar's model list, so every other view "
    "can explore them."
)

# -- settings --------------------------------------------------------------------------------------------------------

cols = st.columns(3)
dataset = cols[0].selectbox(
    "Data set", list(U.DATASETS), format_func=lambda d: f"{d} — {U.DATASETS[d]}", key="train_dataset"
)
archs = U.ARCHITECTURES.get(dataset, ["mlp"])
if st.session_state.get("train_arch") not in archs:
    st.session_state["train_arch"] = archs[0]
arch = cols[1].selectbox("Architecture", archs, key="train_arch")
activation = cols[2].selectbox(
    "Activation",
    ["silu", "relu", "gelu", "tanh", "softplus"],
    key="train_activation",
    help="Smooth activations give exact curvature; ReLU networks are piecewise linear.",
)
group = "toy" if U.is_toy(dataset) else "digits"
cols = st.columns(4)
epochs = int(cols[0].slider("Epochs", 1, 200, U.DEFAULTS[group]["epochs"], key=f"train_epochs_{group}"))
optimizer = cols[1].radio(
    "Optimizer",
    ["sgd", "adam"],
    format_func=lambda o: {"sgd": "SGD (momentum 0.9)", "adam": "AdamW"}[o],
    horizontal=True,
    key="train_optimizer",
)
lr_options = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.05, 0.1, 0.2, 0.3, 0.5]
lr_default = U.DEFAULT_LR[(group, arch)] if optimizer == "sgd" else 3e-3
lr = float(
    cols[2].select_slider(
        "Learning rate (peak of a one-cycle schedule)",
        lr_options,
        value=lr_default,
        key=f"train_lr_{group}_{arch}_{optimizer}",
    )
)
seed = int(cols[3].number_input("Seed", 0, 10_000, 0, key="train_seed"))

st.subheader("Activated gradients")
left, right = st.columns([2, 3])
with left:
    alpha = float(st.slider("α (bound απ/2)", 0.01, 2.0, 0.3, 0.01, key="train_alpha"))
    beta = float(st.slider("β (slope αβ at 0)", 0.5, 50.0, 4.5, 0.5, key="train_beta"))
    on = st.radio(
        "Activate",
        ["gradient", "momentum"],
        format_func=lambda o: {"gradient": "the raw gradient", "momentum": "SGD's momentum update"}[o],
        horizontal=True,
        key="train_on",
        help="The raw gradient: before weight decay and momentum (SGD) or Adam's moments. The momentum update: "
        "SGD only.",
    )
    twin = st.checkbox("Also train the same model without them, to compare", value=True, key="train_twin")
    st.caption("Defaults from the authors' code: α = 0.3, β = 4.5 (SGD); their CIFAR runs use α = 0.1, β = 20.")
with right:
    st.plotly_chart(gradient_activation_figure(alpha, beta), key="train_ga_fig", config={"displayModeBar": False})

if optimizer == "adam":
    st.info(
        "With AdamW, activated gradients change little: for small gradients α·arctan(β·g) ≈ αβ·g is a rescaling, "
        "which Adam's normalisation undoes (measured here on moons: the two models' weights differ by about 1e-4 "
        "after 3 epochs). Liu et al.'s defaults are for SGD."
    )
if on == "momentum" and optimizer != "sgd":
    st.warning("Activating the momentum update needs the SGD optimizer: choose SGD, or activate the raw gradient.")
    st.stop()

settings = U.TrainSettings(dataset, arch, activation, epochs, lr, optimizer, seed, alpha, beta, on, twin)
with page.guard("These settings cannot be trained"):
    configs = U.configs(settings)
    for c in configs:
        c.check()

found = [U.existing(c) for c in configs]
start = st.empty()  # the Train button and its note, cleared once the models exist
if not all(found):
    with start.container():
        st.button("Train", type="primary", key="train_go", icon=":material/model_training:")
        st.caption(
            f"{len(configs)} model{'s' if len(configs) > 1 else ''}, {epochs} epochs each; a progress bar shows each "
            "epoch, and Stop keeps nothing half-trained. Models trained once with these settings come back instantly."
        )
    if not st.session_state.get("train_go"):
        st.stop()

results = []
for config in configs:
    with page.guard(f"Training {config.name} failed"):
        results.append(U.train(config))
start.empty()

# -- results ---------------------------------------------------------------------------------------------------------

st.subheader("Training")
mcols = st.columns(len(results) * 2)
plain_accuracy = results[0].card["test_accuracy"] if twin else None
for i, (config, result) in enumerate(zip(configs, results, strict=True)):
    accuracy = result.card["test_accuracy"]
    delta = f"{accuracy - plain_accuracy:+.1%}" if twin and config.grad_activation == "arctan" else None
    mcols[2 * i].metric(f"Test accuracy, {U.label(config)}", f"{accuracy:.1%}", delta=delta)
    mcols[2 * i + 1].metric("Training time", f"{result.card['training_seconds']:.0f} s")
st.plotly_chart(
    training_curves({U.label(c): r.history for c, r in zip(configs, results, strict=True)}), key="train_curves"
)

st.subheader("The boundaries they draw")
models = [U.handle(c.name) for c in configs]
data = state.dataset(dataset, "test")
if U.is_toy(dataset):
    st.caption("For a 2D data set the slice is the whole input space: the regions each model draws, with the test set.")
    slices = [U.input_space_slice(m, data.images) for m in models]
    fcols = st.columns(len(models))
    for col, config, model, sl in zip(fcols, configs, models, slices, strict=True):
        col.plotly_chart(
            slice_figure(
                sl,
                model.class_names,
                title=U.label(config),
                points=(data.images.numpy(), data.labels.numpy()),
                dim_invalid=False,
                height=460,
            ),
            key=f"train_slice_{config.name}",
        )
    if len(slices) == 2:
        iou = region_iou(slices[0].labels, slices[1].labels, slices[0].num_classes)
        st.metric(
            "Agreement of the two region maps",
            f"{iou.agreement:.1%}",
            help=f"Share of the view where both models predict the same class; mean IoU {iou.mean_iou:.3f}.",
        )
else:
    n = int(st.slider("Test images to measure", 10, min(400, len(data)), min(100, len(data)), 10, key="train_n"))
    x = data.images[:n]
    distances, converged, curv = {}, {}, {}
    with page.guard("Could not measure the boundaries"):
        for config, model in zip(configs, models, strict=True):
            fool = U.deepfool_distances(model, x)
            distances[U.label(config)] = fool.boundary_distance.numpy()
            converged[U.label(config)] = fool.converged.numpy()
        n_curv = min(20, n)
        for config, model in zip(configs, models, strict=True):
            curv[U.label(config)] = U.largest_curvature(U.curvatures(model, x[:n_curv]))
    fcols = st.columns(2)
    fcols[0].plotly_chart(
        margin_comparison(
            distances,
            converged,
            title=f"Distance to the nearest boundary (DeepFool), {n} test images",
            axis_title="L2 distance in [0, 1] pixels",
        ),
        key="train_margins",
    )
    fcols[1].plotly_chart(
        margin_comparison(
            curv,
            title=f"Largest principal curvature at the boundary point, {n_curv} images",
            axis_title="|κ| (1 / L2 pixel units)",
            log=True,
        ),
        key="train_curvature",
    )
    st.caption(
        "Larger distances mean a model that is harder to fool by small changes; larger curvature means a boundary "
        "that bends sharply near the data (for ReLU models the curvature is measured on a softplus-smoothed copy, "
        "as on the Curvature page)."
    )

st.subheader("Explore them in every view")
ecols = st.columns(len(configs))
for col, config, result in zip(ecols, configs, results, strict=True):
    with col:
        st.markdown(f"**{config.name}** — {U.label(config)}")
        st.button(
            "Use in the sidebar",
            key=f"train_use_{config.name}",
            on_click=U.use_in_sidebar,
            args=(config.name,),
            icon=":material/arrow_back:",
        )
        st.download_button(
            "Download the weights (.safetensors)",
            data=U.download_bytes(result),
            file_name=f"{config.name}.safetensors",
            mime="application/octet-stream",
            key=f"train_dl_{config.name}",
        )
        st.code(result.card.get("training_command", ""), language="bash")
