using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Training;

/// <summary>
/// Mixed-precision training with fp32 master weights (Micikevicius et al. 2018, "Mixed Precision Training"), done with
/// explicit casts because TorchSharp has no autocast. The model the optimizer steps stays fp32 (the master); a working
/// copy of the same architecture, on the master's device, holds bf16 or fp16 weights. Every step
/// (<see cref="TrainStep"/>): master weights → working copy (cast), forward and backward on the working copy with the
/// input cast down (integer inputs such as token ids stay as they are), the loss computed in fp32 from fp32-cast
/// outputs, the gradients cast up into the master's <c>.grad</c>, and the optimizer step on the master — so the
/// optimizer's moments and every update are fp32, and small updates are not lost to bf16's 8-bit mantissa.
/// <para>
/// Batch norms of the working copy stay fp32 (weights, biases and running statistics), as apex's
/// <c>keep_batchnorm_fp32</c> does: libtorch's CPU kernels take a bf16 or fp16 input with fp32 norm parameters (checked
/// on libtorch 2.10 for training forward and backward; only an fp64 input against fp32 weights is refused), and
/// PyTorch's CUDA path accepts the same mix (apex's O2 level relies on it; not yet run here, no GPU). Their output
/// has the input's dtype, so the rest of the network stays low precision.
/// </para>
/// <para>
/// Running statistics are updated by training on the working copy and copied back to the master by
/// <see cref="CopyNormStatisticsToMaster"/>, which <see cref="Trainer.TrainEpoch"/> calls when an epoch (or an
/// interrupted part of one) ends: nothing reads the master's statistics while the epoch runs, and copying every step
/// would cost two small copies per norm per step for nothing. Being fp32 on both sides, they copy exactly.
/// Evaluation and "precise BN" recalibration run on the fp32 master; <see cref="SyncFromMaster"/> at the start of the
/// next epoch hands the recalibrated statistics back to the working copy, as training in fp32 would continue from
/// them.
/// </para>
/// <para>
/// fp16 takes a <see cref="LossScaler"/>. A skipped step (non-finite gradients) leaves weights, moments and AdamW's
/// per-parameter step counts as they were, but still advances <see cref="NamedOptimizer.Step"/>, the learning-rate
/// schedule's position: runs count their position in batches, and the schedule is laid out over batches, so the
/// schedule stays aligned with the data and ends where it should (as a PyTorch loop that calls
/// <c>scheduler.step()</c> every iteration does while GradScaler skips <c>optimizer.step()</c>).
/// </para>
/// <para>
/// The scaler is not saved in checkpoints: each TrainInterval activity builds a new one at 2^16. Resuming therefore
/// repeats the first steps' search for the scale (a few skipped steps, each halving it, until the gradients fit),
/// so an fp16 run cut into activities at different points is not bit-identical to an uninterrupted one; a cut at the
/// same batch replays identically. fp32 and bf16 runs have no scaler and resume bit-exactly.
/// </para>
/// </summary>
public sealed class MixedPrecision : IDisposable
{
    /// <summary>A master parameter and its working-copy counterpart (same name).</summary>
    private sealed record Pair(string Name, Parameter Master, Parameter Working);

    private readonly nn.Module<Tensor, Tensor> _working;
    private readonly List<Pair> _pairs;
    private readonly Dictionary<IntPtr, Pair> _byMasterHandle;
    private readonly HashSet<string> _normBufferNames;

    /// <param name="master">The fp32 model the optimizer steps.</param>
    /// <param name="createWorkingCopy">Builds a model of the master's architecture (parameter names and shapes are
    /// checked), e.g. <c>() =&gt; ModelFactory.Create(model.Spec).Module</c>; its initial values do not matter. This
    /// object owns and disposes it.</param>
    /// <param name="precision">bf16 or fp16.</param>
    /// <param name="scaler">fp16 only; a default <see cref="LossScaler"/> (2^16, doubling after 2000 finite steps)
    /// when left out.</param>
    public MixedPrecision(nn.Module<Tensor, Tensor> master, Func<nn.Module<Tensor, Tensor>> createWorkingCopy,
        TrainingPrecision precision, LossScaler? scaler = null)
    {
        WorkingType = precision switch
        {
            TrainingPrecision.Bf16 => ScalarType.BFloat16,
            TrainingPrecision.Fp16 => ScalarType.Float16,
            _ => throw new ArgumentException(
                $"mixed precision needs bf16 or fp16, got {precision}; fp32 trains the master directly (no " +
                "MixedPrecision)", nameof(precision)),
        };
        if (scaler is not null && precision != TrainingPrecision.Fp16)
            throw new ArgumentException("a loss scaler applies to fp16 only", nameof(scaler));
        Precision = precision;
        Master = master;
        Scaler = precision == TrainingPrecision.Fp16 ? scaler ?? new LossScaler() : null;

        var masterParameters = master.named_parameters().ToList();
        if (masterParameters.Count == 0)
            throw new ArgumentException("the master model has no parameters", nameof(master));
        foreach (var (name, p) in masterParameters)
            if (p.dtype != ScalarType.Float32)
                throw new ArgumentException($"master parameter '{name}' is {p.dtype}; master weights must be Float32",
                    nameof(master));
        var device = masterParameters[0].parameter.device;

        _working = createWorkingCopy();
        if (ReferenceEquals(_working, master)) // checked before the try: failing must not dispose the master
            throw new ArgumentException("the working copy must be a new model, not the master",
                nameof(createWorkingCopy));
        try
        {
            _working.to(WorkingType);
            foreach (var norm in _working.modules().Where(IsBatchNorm)) norm.to(ScalarType.Float32);
            _working.to(device);
            _working.train();

            var working = _working.named_parameters()
                .ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            var missing = masterParameters.Select(p => p.name).Where(n => !working.ContainsKey(n)).ToList();
            var extra = working.Keys.Except(masterParameters.Select(p => p.name)).ToList();
            if (missing.Count > 0 || extra.Count > 0)
                throw new ArgumentException("the working copy's parameters differ from the master's: " +
                    $"missing [{string.Join(", ", missing.Take(5))}], extra [{string.Join(", ", extra.Take(5))}]",
                    nameof(createWorkingCopy));
            _pairs = [];
            _byMasterHandle = [];
            // Weights shared between modules (ScaleNet instances running their owner's modules) are listed once, so
            // a working copy whose cast had split them would show extra names above. Should a tensor ever be listed
            // under several names, its copy must be shared the same way.
            foreach (var group in masterParameters.GroupBy(p => p.parameter.Handle))
            {
                var (name, p) = group.First();
                var w = working[name];
                if (group.Any(g => working[g.name].Handle != w.Handle))
                    throw new ArgumentException($"the working copy does not share '{name}' as the master does",
                        nameof(createWorkingCopy));
                if (!w.shape.SequenceEqual(p.shape))
                    throw new ArgumentException(
                        $"working-copy parameter '{name}' has shape [{string.Join(",", w.shape)}], the master's " +
                        $"[{string.Join(",", p.shape)}]", nameof(createWorkingCopy));
                w.requires_grad = p.requires_grad; // frozen in the master: no gradient to compute
                var pair = new Pair(name, p, w);
                _pairs.Add(pair);
                _byMasterHandle[group.Key] = pair;
            }
            _normBufferNames = _working.named_modules().Where(m => IsBatchNorm(m.module))
                .SelectMany(m => m.module.named_buffers(recurse: false)
                    .Select(b => string.IsNullOrEmpty(m.name) ? b.name : $"{m.name}.{b.name}"))
                .ToHashSet(StringComparer.Ordinal);
            SyncFromMaster();
        }
        catch
        {
            _working.Dispose();
            throw;
        }
    }

    public TrainingPrecision Precision { get; }

    /// <summary>BFloat16 or Float16: the working copy's dtype (batch norms excepted).</summary>
    public ScalarType WorkingType { get; }

    /// <summary>The fp32 model the optimizer steps.</summary>
    public nn.Module<Tensor, Tensor> Master { get; }

    /// <summary>The low-precision model forward and backward run on.</summary>
    public nn.Module<Tensor, Tensor> WorkingCopy => _working;

    /// <summary>fp16's loss scaler; null for bf16.</summary>
    public LossScaler? Scaler { get; }

    private static bool IsBatchNorm(nn.Module m) => m is BatchNorm1d or BatchNorm2d or BatchNorm3d;

    /// <summary>
    /// Copies every master parameter and buffer into the working copy (cast to its dtype there) and puts it in
    /// training mode. Run at the start of every epoch, so statistics recalibrated on the master carry over.
    /// </summary>
    public void SyncFromMaster()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var pair in _pairs) pair.Working.copy_(pair.Master);
        var masterBuffers = Master.named_buffers().ToDictionary(b => b.name, b => b.buffer, StringComparer.Ordinal);
        foreach (var (name, buffer) in _working.named_buffers())
            if (masterBuffers.TryGetValue(name, out var source)) buffer.copy_(source);
        _working.train();
    }

    /// <summary>Copies the working copy's batch-norm running statistics (fp32, so exactly) into the master.</summary>
    public void CopyNormStatisticsToMaster()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var working = _working.named_buffers().ToDictionary(b => b.name, b => b.buffer, StringComparer.Ordinal);
        foreach (var (name, buffer) in Master.named_buffers())
            if (_normBufferNames.Contains(name) && working.TryGetValue(name, out var source)) buffer.copy_(source);
    }

    /// <summary>
    /// One training step on a batch: returns the fp32, unscaled loss (with its graph) and the accuracy counts, and
    /// steps <paramref name="optimizer"/> at <paramref name="lr"/> unless fp16's gradients were not finite (then
    /// only <see cref="NamedOptimizer.Step"/> advances; see the class remarks). The master's gradients are
    /// overwritten, except those of parameters the step did not use, which keep what they had: call
    /// <see cref="NamedOptimizer.ZeroGrad"/> first, as <see cref="Trainer.TrainEpoch"/> does. Run inside the caller's
    /// per-step dispose scope.
    /// </summary>
    public BatchLoss TrainStep(Tensor x, Tensor y, LossFunction loss, NamedOptimizer optimizer, double lr)
    {
        using (torch.no_grad())
            foreach (var pair in _pairs)
            {
                if (!pair.Master.requires_grad) continue; // frozen: copied by SyncFromMaster, never changes
                pair.Working.copy_(pair.Master);
                var g = pair.Working.grad;
                if (g is null) continue;
                g.detach_();
                g.zero_();
            }
        var input = x.is_floating_point() ? x.to(WorkingType) : x;
        var output = _working.forward(input);
        var batch = loss(output.to(ScalarType.Float32), y);
        if (Scaler is null) batch.Loss.backward();
        else (batch.Loss * Scaler.Scale).backward();

        bool finite = true;
        using (torch.no_grad())
        {
            var finiteFlags = new List<Tensor>();
            foreach (var (name, p) in optimizer.Parameters)
            {
                if (!_byMasterHandle.TryGetValue(p.Handle, out var pair))
                    throw new ArgumentException($"optimizer parameter '{name}' is not a parameter of the master model",
                        nameof(optimizer));
                var low = pair.Working.grad;
                // No gradient (a parameter this step did not use): the master's stays as it was (zeroed by the
                // trainer), as in fp32 training.
                if (low is null) continue;
                var grad = p.grad;
                if (grad is null) p.grad = grad = torch.zeros_like(p);
                grad.copy_(low); // casts up
                if (Scaler is not null)
                {
                    grad.mul_(1 / Scaler.Scale);
                    finiteFlags.Add(grad.isfinite().all());
                }
            }
            if (finiteFlags.Count > 0) finite = torch.stack(finiteFlags).all().item<bool>(); // one device sync per step
        }
        if (Scaler is null || Scaler.Update(finite, optimizer.Step)) optimizer.StepWith(lr);
        else
        {
            optimizer.ZeroGrad(); // no infinities left lying in the master's gradients
            optimizer.Step++;
        }
        return batch;
    }

    public void Dispose() => _working.Dispose();
}
