using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Training;

/// <summary>Loss and accuracy over some samples.</summary>
/// <param name="NonFiniteOutputs">Model outputs (logits) that were NaN or infinite; loss and accuracy mean nothing
/// when this is not 0.</param>
/// <param name="Outputs">Model outputs seen (samples × classes, or tokens × vocabulary).</param>
public sealed record EvalMetrics(double Loss, double Accuracy, long Samples, long NonFiniteOutputs = 0,
    long Outputs = 0);

/// <summary>What one (possibly interrupted) pass over training batches did.</summary>
public sealed record EpochMetrics(double Loss, double Accuracy, long Samples, int Batches, double Seconds,
    bool Interrupted);

/// <summary>
/// A batch's mean loss (with its graph, for training) and how many of its <paramref name="Count"/> predictions were
/// right. Classification counts samples; a language model counts target tokens.
/// </summary>
public readonly record struct BatchLoss(Tensor Loss, long Correct, long Count);

/// <summary>The loss hook of <see cref="Trainer"/>: model output and targets → <see cref="BatchLoss"/>.</summary>
public delegate BatchLoss LossFunction(Tensor output, Tensor target);

/// <summary>The losses the trainer knows.</summary>
public static class Losses
{
    /// <summary>Cross-entropy over (B, classes) logits and (B) labels, accuracy of the arg-max.</summary>
    public static LossFunction Classification(double labelSmoothing = 0) => (logits, y) =>
    {
        var loss = nn.functional.cross_entropy(logits, y, label_smoothing: labelSmoothing);
        long correct;
        using (torch.no_grad()) correct = logits.argmax(1).eq(y).sum().item<long>();
        return new BatchLoss(loss, correct, y.shape[0]);
    };

    /// <summary>
    /// Next-token cross-entropy over (B, T, V) logits and (B, T) targets (the inputs shifted by one); targets equal to
    /// <paramref name="ignoreIndex"/> (padding) count nowhere. "Correct" is top-1 next-token accuracy.
    /// </summary>
    public static LossFunction NextToken(long ignoreIndex = -100) => (logits, y) =>
    {
        var flat = logits.reshape(-1, logits.shape[^1]);                                   // (B·T, V)
        var targets = y.reshape(-1);                                                        // (B·T)
        var loss = nn.functional.cross_entropy(flat, targets, ignore_index: ignoreIndex);
        long correct, count;
        using (torch.no_grad())
        {
            var real = targets.ne(ignoreIndex);
            count = real.sum().item<long>();
            correct = flat.argmax(1).eq(targets).logical_and(real).sum().item<long>();
        }
        return new BatchLoss(loss, correct, count);
    };
}

/// <summary>Reported after every training batch.</summary>
public readonly record struct BatchProgress(int Batch, long Step, double Loss, double LearningRate);

/// <summary>
/// The training loop without framework magic (nanoGPT style): forward, loss (cross-entropy with optional label
/// smoothing, or any <see cref="LossFunction"/> — next-token prediction for language models), backward, optimizer
/// step at the schedule's learning rate. Batches are moved to the given <see cref="ComputeDevice"/> (a run passes its
/// own, so a model that missed its placement fails at its first batch instead of training quietly on the CPU), or
/// where the model is. Metrics are per prediction the loss counts (samples, or tokens). Every step
/// runs inside its own dispose scope, so no tensor outlives its step except parameters, gradients and optimizer
/// state.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// Trains over <paramref name="batches"/> (the enumerator is advanced inside each step's dispose scope, so batch
    /// tensors die with the step). Stops early — between batches — when <paramref name="shouldStop"/> says so or
    /// the token is cancelled, and reports that as <see cref="EpochMetrics.Interrupted"/>. With
    /// <paramref name="mixed"/> (whose master must be <paramref name="model"/>), forward and backward run on its
    /// low-precision working copy and the optimizer steps the fp32 <paramref name="model"/>; the working copy's
    /// batch-norm statistics are copied back to <paramref name="model"/> when the pass ends, interrupted or not.
    /// Without it, training is exactly the fp32 loop.
    /// </summary>
    public static EpochMetrics TrainEpoch(nn.Module<Tensor, Tensor> model, NamedOptimizer optimizer,
        LearningRateSchedule schedule, IEnumerable<(Tensor X, Tensor Y)> batches, double labelSmoothing = 0,
        Action<BatchProgress>? onBatch = null, Func<bool>? shouldStop = null,
        CancellationToken cancellationToken = default, LossFunction? loss = null, ComputeDevice? device = null,
        MixedPrecision? mixed = null)
    {
        if (mixed is not null && !ReferenceEquals(mixed.Master, model))
            throw new ArgumentException("the mixed-precision master is not the model being trained", nameof(mixed));
        loss ??= Losses.Classification(labelSmoothing);
        var clock = Stopwatch.StartNew();
        device ??= ComputeDevice.Of(model); // batches go to the run's device, or where the model is
        model.train();
        mixed?.SyncFromMaster();
        double lossSum = 0;
        long correct = 0, samples = 0;
        int count = 0;
        bool interrupted = false;
        using var e = batches.GetEnumerator();
        while (true)
        {
            if (cancellationToken.IsCancellationRequested || (shouldStop?.Invoke() ?? false))
            {
                interrupted = true;
                break;
            }
            using var scope = torch.NewDisposeScope();
            if (!e.MoveNext()) break;
            var (x, y) = (device.Input(e.Current.X), device.Target(e.Current.Y));
            double lr = schedule.At(optimizer.Step);
            optimizer.ZeroGrad();
            BatchLoss batch;
            if (mixed is null)
            {
                var output = model.forward(x);
                batch = loss(output, y);
                batch.Loss.backward();
                optimizer.StepWith(lr);
            }
            else batch = mixed.TrainStep(x, y, loss, optimizer, lr);
            long n = batch.Count;
            double batchLoss = LossValue(batch.Loss);
            if (!double.IsFinite(batchLoss))
                throw new ScaleGrowException(
                    $"training diverged: loss is {batchLoss} at step {optimizer.Step} (learning rate {lr:g3})");
            lossSum += batchLoss * n;
            correct += batch.Correct;
            samples += n;
            count++;
            onBatch?.Invoke(new BatchProgress(count, optimizer.Step, batchLoss, lr));
        }
        mixed?.CopyNormStatisticsToMaster();
        NativeAllocator.Trim();
        return new EpochMetrics(samples > 0 ? lossSum / samples : double.NaN,
            samples > 0 ? (double)correct / samples : double.NaN, samples, count, clock.Elapsed.TotalSeconds,
            interrupted);
    }

    /// <summary>
    /// Re-estimates every batch norm's running statistics as a plain average over <paramref name="batches"/> of
    /// training inputs, forward only ("precise BN", Wu and Johnson 2021, "Rethinking 'Batch' in BatchNorm"). The
    /// running statistics that training keeps are an EMA (momentum 0.1) of batches taken while the weights move;
    /// at a high learning rate they lag the weights, and eval-mode accuracy falls far below what the network
    /// does in training (measured on the quick run: 36.6 % validation accuracy in eval mode, 79.3 % after this).
    /// Those stale numbers drove the stopping rule and the curves. Returns false (and runs nothing) for a model
    /// without batch norms.
    /// </summary>
    public static bool RecalibrateNorms(nn.Module<Tensor, Tensor> model, IEnumerable<(Tensor X, Tensor Y)> batches,
        CancellationToken cancellationToken = default, ComputeDevice? device = null)
    {
        var norms = model.modules().OfType<TorchSharp.Modules.BatchNorm2d>().ToList();
        if (norms.Count == 0) return false;
        var momenta = norms.Select(n => n.momentum).ToList();
        foreach (var n in norms)
        {
            n.reset_running_stats();
            n.momentum = null; // cumulative average
        }
        bool wasTraining = model.training;
        device ??= ComputeDevice.Of(model);
        model.train();
        try
        {
            using var noGrad = torch.no_grad();
            using var e = batches.GetEnumerator();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                if (!e.MoveNext()) break;
                model.forward(device.Input(e.Current.X));
            }
        }
        finally
        {
            for (int i = 0; i < norms.Count; i++) norms[i].momentum = momenta[i];
            if (!wasTraining) model.eval();
        }
        return true;
    }

    /// <summary>
    /// A scalar loss as a number. <c>item&lt;float&gt;()</c> throws on any dtype but Float32 (a bf16, fp16 or fp64
    /// loss from a custom <see cref="LossFunction"/>), so those are cast first; an fp32 loss is read as it always was.
    /// </summary>
    internal static double LossValue(Tensor loss) => loss.dtype == ScalarType.Float32
        ? loss.item<float>()
        : loss.detach().to(ScalarType.Float32).item<float>();

    /// <summary>Eval-mode loss and accuracy over batches (no gradients).</summary>
    public static EvalMetrics Evaluate(nn.Module<Tensor, Tensor> model, IEnumerable<(Tensor X, Tensor Y)> batches,
        CancellationToken cancellationToken = default, LossFunction? loss = null, ComputeDevice? device = null)
    {
        loss ??= Losses.Classification();
        device ??= ComputeDevice.Of(model);
        model.eval();
        using var noGrad = torch.no_grad();
        double lossSum = 0;
        long correct = 0, samples = 0, nonFinite = 0, outputs = 0;
        using var e = batches.GetEnumerator();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            if (!e.MoveNext()) break;
            var (x, y) = (device.Input(e.Current.X), device.Target(e.Current.Y));
            var output = model.forward(x);
            nonFinite += output.isfinite().logical_not().sum().item<long>();
            outputs += output.numel();
            var batch = loss(output, y);
            lossSum += LossValue(batch.Loss) * batch.Count;
            correct += batch.Correct;
            samples += batch.Count;
        }
        NativeAllocator.Trim();
        return new EvalMetrics(samples > 0 ? lossSum / samples : double.NaN,
            samples > 0 ? (double)correct / samples : double.NaN, samples, nonFinite, outputs);
    }

    /// <summary>A scalar read as float32, whatever the tensor's floating type or device (<see cref="LossValue"/>).</summary>
    internal static float ReadFloat(Tensor scalar) => (float)LossValue(scalar);
}
