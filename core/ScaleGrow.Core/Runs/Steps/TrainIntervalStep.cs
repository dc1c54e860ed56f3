using System.Diagnostics;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Training;
using TorchSharp;

namespace ScaleGrow.Runs;

/// <summary>Reported after every training batch of a run (for live progress displays).</summary>
public sealed record TrainingProgress(string RunId, int Epoch, int Batch, int Batches, double Loss, double LearningRate);

/// <param name="UntilPart">With <paramref name="Parts"/> > 1: train to the end of this part of epoch
/// <paramref name="UntilEpoch"/> (a growth point inside it, <see cref="GrowthPoints"/>); 0 = to the epoch's start.</param>
public sealed record TrainIntervalInput(string RunId, RunCheckpoint Checkpoint, int Step, TrainingPosition Position,
    int UntilEpoch, ScheduleSegment Schedule, string Phase, double MaxSeconds, int UntilPart = 0, int Parts = 1);

/// <param name="Point">The validation at the growth point inside an epoch that training stopped at, if it did.</param>
/// <param name="BatchesPerEpoch">Training batches per epoch of the run's data.</param>
public sealed record TrainIntervalResult(RunCheckpoint Checkpoint, TrainingPosition Position,
    IReadOnlyList<EpochRecord> Epochs, bool StopRequested, bool DeleteRequested, string? Device = null,
    ValidationPoint? Point = null, int BatchesPerEpoch = 0);

/// <summary>
/// The <c>TrainInterval</c> activity (see <see cref="RunAsync"/>).
/// </summary>
public sealed class TrainIntervalStep(RunSteps run) : RunStep<TrainIntervalInput, TrainIntervalResult>(run)
{
    /// <summary>The activity's name, as the orchestrations call it and the service documents it.</summary>
    public const string Name = "TrainInterval";

    /// <summary>
    /// Trains from <see cref="TrainIntervalInput.Position"/> up to <see cref="TrainIntervalInput.UntilEpoch"/> (and
    /// <see cref="TrainIntervalInput.UntilPart"/> of it), evaluating on the validation split after every epoch and at
    /// a growth point inside an epoch. Bounded in time: after
    /// <see cref="TrainIntervalInput.MaxSeconds"/> it stops between batches and checkpoints mid-epoch (the position
    /// says where to continue; batch order and augmentation replay exactly). It also stops between batches when the
    /// run's control flag asks for it (stop or delete), so those take effect within seconds.
    /// </summary>
    public override async Task<TrainIntervalResult> RunAsync(TrainIntervalInput input,
        CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var spec = await Run.ReadSpecAsync(input.RunId, cancellationToken);
        using var lease = RunData.Lease(spec);
        var data = lease.Data;
        var device = Run.DeviceFor(spec);
        var (model, metadata) = await Run.LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            using var optimizer = new NamedOptimizer(TrainableParameters(spec, model), spec.Training);
            using (var state = ModelIO.LoadOptimizer(
                       await Run.Store.ReadAllBytesAsync(input.Checkpoint.Optimizer, cancellationToken),
                       input.Checkpoint.Optimizer))
                optimizer.Import(state, strict: true, source: input.Checkpoint.Optimizer);
            // bf16/fp16: a low-precision working copy trains against the fp32 master (a fresh fp16 loss scaler per
            // activity: see MixedPrecision's remarks on resuming).
            var precision = Run.PrecisionOn(device, spec.Training.Precision);
            using var mixed = precision == TrainingPrecision.Fp32 ? null
                : new MixedPrecision(model.Module, () => ModelFactory.Create(model.Spec).Module, precision);
            long batchSeed = Seeds.Derive(spec.Seed, "batches", 0);
            int batches = data.TrainBatchCount(spec.Training.BatchSize);
            int parts = Math.Max(1, input.Parts);
            if (parts > batches)
                throw new InvalidSpecException(
                    $"growth: intervalsPerEpoch {parts} is more than the {batches} training batches of an epoch");
            int untilBatch = input.UntilPart > 0 ? GrowthPoints.BatchOf(input.UntilPart, parts, batches) : 0;
            var schedule = input.Schedule.For(batches);
            var control = new ControlFlag(Run.Store, input.RunId, Run.ControlPollSeconds);
            var epochs = new List<EpochRecord>();
            var startBatches = new List<int>();
            var position = input.Position;
            ValidationPoint? point = null;
            bool stop = false, delete = false;
            string arch = model.Spec.ArchString;
            long parameters = ModelStats.Of(model.Spec).Parameters;
            while (position.Epoch < input.UntilEpoch || (position.Epoch == input.UntilEpoch && position.Batch < untilBatch))
            {
                int epoch = position.Epoch, start = position.Batch;
                int end = epoch == input.UntilEpoch ? untilBatch : batches;
                // What earlier activities trained of this epoch, when it was split (an older state has no record).
                var before = start > 0 ? position.Partial : null;
                int trained = 0;
                var metrics = Trainer.TrainEpoch(model.Module, optimizer, schedule,
                    data.TrainEpoch(spec.Training.BatchSize, batchSeed, epoch).Skip(start).Take(end - start),
                    spec.Training.LabelSmoothing,
                    onBatch: b =>
                    {
                        trained++;
                        Run.Progress?.Report(new TrainingProgress(input.RunId, epoch, start + b.Batch, batches,
                            b.Loss, b.LearningRate));
                    },
                    loss: data.Loss(spec.Training.LabelSmoothing), device: device,
                    shouldStop: () =>
                    {
                        var flag = control.Read();
                        stop |= flag.Stop;
                        delete |= flag.Delete;
                        // The time limit lets every activity train at least one batch: a limit shorter than loading
                        // the checkpoint and data would otherwise make no progress, activity after activity.
                        return stop || delete || (epochs.Count + trained > 0 && clock.Elapsed.TotalSeconds > input.MaxSeconds);
                    },
                    cancellationToken: cancellationToken, mixed: mixed);
                var sofar = before?.Add(PartialEpoch.Of(metrics));
                int done = start + metrics.Batches;
                if (done < batches)
                {
                    position = new TrainingPosition(epoch, done, sofar ?? PartialEpoch.Of(metrics));
                    if (done == end && !stop && !delete)
                    {
                        // A growth point inside the epoch: the stopping rule needs the validation accuracy here,
                        // measured as at an epoch's end (without the recalibration a point read 10 points under the
                        // epochs around it). The statistics are recomputed from scratch there, so training is the same.
                        RecalibrateNorms(spec, model.Module, data, epoch, device, cancellationToken);
                        var at = Trainer.Evaluate(model.Module, data.ValidationBatches(spec.Training.EvalBatchSize),
                            cancellationToken, data.Loss(0), device);
                        point = new ValidationPoint(epoch, done, at.Accuracy, at.Loss);
                    }
                    break;
                }
                RecalibrateNorms(spec, model.Module, data, epoch, device, cancellationToken);
                var validation = Trainer.Evaluate(model.Module, data.ValidationBatches(spec.Training.EvalBatchSize),
                    cancellationToken, data.Loss(0), device);
                var record = new EpochRecord
                {
                    Epoch = epoch, Phase = input.Phase, TrainLoss = sofar?.MeanLoss() ?? metrics.Loss,
                    TrainAccuracy = sofar?.MeanAccuracy() ?? metrics.Accuracy,
                    ValidationLoss = validation.Loss, ValidationAccuracy = validation.Accuracy,
                    Seconds = sofar?.Seconds ?? metrics.Seconds, LearningRate = schedule.At(optimizer.Step), Arch = arch,
                    Parameters = parameters, Device = ComputeDevice.Of(model.Module).Name,
                    Precision = precision.ToString().ToLowerInvariant(),
                    EndedAt = DateTime.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                };
                epochs.Add(record);
                startBatches.Add(start);
                position = new TrainingPosition(epoch + 1, 0);
                if (stop || delete || clock.Elapsed.TotalSeconds > input.MaxSeconds) break;
            }
            // A run being deleted keeps nothing: writing a step now would put files back after `runs delete` removed
            // them (issue 16). The orchestration ends on the flag.
            if (delete)
                return new TrainIntervalResult(input.Checkpoint, input.Position, [], stop, DeleteRequested: true,
                    device.Name);
            var checkpoint = new RunCheckpoint(input.Step, RunPaths.StepModel(input.RunId, input.Step),
                RunPaths.StepOptimizer(input.RunId, input.Step));
            await Run.Store.WriteAsync(checkpoint.Model, ModelIO.SaveModel(model, RunSteps.Carried(metadata)), null, cancellationToken);
            using (var exported = optimizer.Export())
                await Run.Store.WriteAsync(checkpoint.Optimizer, ModelIO.SaveOptimizer(exported), null, cancellationToken);
            // Journal the epochs only once the checkpoint holding them is written: an entry means "done and kept".
            for (int i = 0; i < epochs.Count; i++)
                await Run.Journal(input.RunId).UpsertAsync($"epoch-{epochs[i].Epoch:00000}",
                    EpochEntry.Of(epochs[i], input.Step, startBatches[i]), cancellationToken);
            return new TrainIntervalResult(checkpoint, position, epochs, stop, delete, device.Name, point, batches);
        }
        finally
        {
            model.Module.Dispose();
        }
    }

    /// <summary>Precise batch norm before a validation (<c>training.normRecalibrationBatches</c>; 0 = none).</summary>
    private static void RecalibrateNorms(RunSpec spec, TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> module,
        IRunData data, int epoch, ComputeDevice device, CancellationToken cancellationToken)
    {
        if (spec.Training.NormRecalibrationBatches > 0)
            Trainer.RecalibrateNorms(module,
                data.TrainEpoch(spec.Training.BatchSize, Seeds.Derive(spec.Seed, "norm-recalibration", epoch), epoch)
                    .Take(spec.Training.NormRecalibrationBatches), cancellationToken, device);
    }

    /// <summary>
    /// What the optimizer steps: every parameter, except in a scale run with <c>trainAdaptersOnly</c> once the model is
    /// expanded, where the shared weights are frozen and only the per-instance parameters train. Decided from the
    /// spec and the model's spec at every step, so nothing about freezing has to live in the checkpoint.
    /// </summary>
    private static IEnumerable<(string Name, TorchSharp.Modules.Parameter Param)> TrainableParameters(RunSpec spec,
        IScaleGrowModel model)
    {
        bool expanded = model.Spec is ScaleGrow.Models.Adapters.ILayeredSpec layered &&
                        layered.Layers.Any(l => l.SharesWith is not null || l.Adapter is not null);
        if (spec.Kind == RunKind.Scale && spec.Scale?.Expansion.TrainAdaptersOnly == true && expanded)
            return ScaleGrow.Scaling.ScaleNetExpander.TrainableParameters(model, adaptersOnly: true);
        return model.Module.named_parameters();
    }
}
