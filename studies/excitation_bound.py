"""How much of each true source effect the data determine (issue 3).

A motif ``c_j r_j^T`` acts on a pair's source state only through
``r_j . z_e``.  Directions that the sources of the pairs using motif j never
visit leave that part of ``r_j`` undetermined: no fit can know it, and the
L1 term of ``W`` even pulls a fitted ``r_j`` out of such directions (a unit
``r`` spent there needs larger weights).  Per true motif this script takes

    S_j = sum_e W[e, j]^2 z_e z_e^T          (true weights, observed sources)

and calls a direction *excited* at signal-to-noise ``k`` when its eigenvalue
is at least ``k`` times the noise's share of it, ``noise^2 sum_e W[e, j]^2``.
The bound for the motif is ``|P_k r_j|``, the norm of ``r_j``'s projection on
the excited directions: a fit that got ``c_j`` exactly and ``r_j`` on the
excited directions exactly, and nothing else, would score this matched
|cosine|.  With ``k = 10`` the bound is generous (a direction 3x the noise in
amplitude counts as known); ``k = 100`` is stricter.

    python -m studies.excitation_bound 0 1 2 [--out docs/studies/excitation-bound.csv]

Runs in seconds (no fit).
"""

import numpy as np

from studies._common import PAPER_DATA, CsvLog, seed_args

from licchie.fit import source_excitation

SNR = (10.0, 100.0)


def motif_bounds(ds, truth, noise, snr=SNR):
    """Per true motif: (class names, signal share, in-span share, bounds at each snr)."""
    C = truth["target_effect"].values.T
    R = truth["source_effect"].values.T
    W = truth["weights"].values
    feats = ds["features"].values                              # (cell, time, feature)
    cell_index = {int(c): i for i, c in enumerate(ds["cell"].values)}
    src = np.array([cell_index[int(c)] for c in truth["source"].values])
    tim = truth["time"].values
    time_index = {int(t): i for i, t in enumerate(ds["time"].values)}
    prev = np.array([time_index[int(t)] - 1 for t in tim])
    Z = feats[src, prev]                                       # observed source states
    # signal energy per motif: the summed contribution to each target
    keys = tim * (int(truth["target"].values.max()) + 1) + truth["target"].values
    _, tgt = np.unique(keys, return_inverse=True)
    H = np.zeros((tgt.max() + 1, W.shape[1]))
    np.add.at(H, tgt, W * (Z @ R))
    energy = (H ** 2).sum(0)
    energy = energy / energy.sum()
    Qc, _ = np.linalg.qr(C)
    # the fit's source-excitation diagnostic, applied to the truth
    bounds = np.stack([source_excitation(Z, W, R, noise ** 2, k) for k in snr], axis=1)
    rows = []
    for j in range(W.shape[1]):
        w2 = W[:, j] ** 2
        ev = np.linalg.eigvalsh((Z * w2[:, None]).T @ Z)
        floor = noise ** 2 * w2.sum()
        rows.append(dict(motif=j, energy=float(energy[j]),
                         in_span=float(np.linalg.norm(Qc.T @ R[:, j])),
                         excited_dims=[int(np.sum(ev >= k * floor)) for k in snr],
                         bounds=[float(b) for b in bounds[j]]))
    return rows


def main(argv=None):
    from licchie.synthetic import make_recording

    a = seed_args(argv)
    log = CsvLog("seed,motif,classes,signal_share,in_span,excited_dims_snr10,"
                 "excited_dims_snr100,bound_snr10,bound_snr100")
    for seed in a.seeds:
        ds, truth = make_recording(regime="pooled", seed=seed, **PAPER_DATA)
        group_names = [str(g) for g in truth["class_weights"]["group"].values]
        cw = truth["class_weights"].values                      # (group, frame, motif)
        rows = motif_bounds(ds, truth, PAPER_DATA["noise"])
        for r in rows:
            active = np.flatnonzero(np.abs(cw[:, :, r["motif"]]).max(axis=1) > 0)
            names = "+".join(group_names[g] for g in active)
            log.emit(f"{seed},{r['motif']},{names},{r['energy']:.4f},{r['in_span']:.3f},"
                     f"{r['excited_dims'][0]},{r['excited_dims'][1]},"
                     f"{r['bounds'][0]:.3f},{r['bounds'][1]:.3f}")
        b = np.array([r["bounds"] for r in rows])
        print(f"# seed {seed}: mean bound {b[:, 0].mean():.3f} (snr 10), "
              f"{b[:, 1].mean():.3f} (snr 100); mean in-span "
              f"{np.mean([r['in_span'] for r in rows]):.3f}", flush=True)
    log.write(a.out)


if __name__ == "__main__":
    main()
