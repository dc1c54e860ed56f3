using System.Diagnostics;
using System.Text.Json.Nodes;
using ScaleGrow.Checkpoints;
using ScaleGrow.Models;
using ScaleGrow.Training;
using TorchSharp;

namespace ScaleGrow.Runs;

/// <summary>Reported after every training batch of a run (for live progress displays).</summary>
public sealed record TrainingProgress(string RunId, int Epoch, int Batch, int Batches, double Loss, double LearningRate);

public sealed partial class RunSteps
{
    /// <summary>
    /// What the optimizer steps: every parameter, except in a scale run with <c>trainAdaptersOnly</c> once the model is
    /// expanded, where the shared weights are frozen and only the per-instance parameters train. Decided from the
    /// spec and the model's spec at every step, so nothing about freezing has to live in the checkpoint.
    /// </summary>
    private static IEnumerable<(string Name, TorchSharp.Modules.Parameter Param)> TrainableParameters(RunSpec spec,
        IScaleGrowModel model)
    {
        bool expanded = model.Spec is ScaleGrow.Scaling.ILayeredSpec layered &&
                        layered.Layers.Any(l => l.SharesWith is not null || l.Adapter is not null);
        if (spec.Kind == RunKind.Scale && spec.Scale?.Expansion.TrainAdaptersOnly == true && expanded)
            return ScaleGrow.Scaling.ScaleNetExpander.TrainableParameters(model, adaptersOnly: true);
        return model.Module.named_parameters();
    }

    /// <summary>Receives per-batch progress of training steps run in this process (optional).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <summary>
    /// Trains from <see cref="TrainIntervalInput.Position"/> up to <see cref="TrainIntervalInput.UntilEpoch"/>,
    /// evaluating on the validation split after every epoch. Bounded in time: after
    /// <see cref="TrainIntervalInput.MaxSeconds"/> it stops between batches and checkpoints mid-epoch (the position
    /// says where to continue; batch order and augmentation replay exactly). It also stops between batches when the
    /// run's control flag asks for it (stop or delete), so those take effect within seconds.
    /// </summary>
    public async Task<TrainIntervalResult> TrainIntervalAsync(TrainIntervalInput input,
        CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var spec = await ReadSpecAsync(input.RunId, cancellationToken);
        using var lease = RunData.Lease(spec);
        var data = lease.Data;
        var device = DeviceFor(spec);
        var (model, metadata) = await LoadModelWithMetadataAsync(input.Checkpoint.Model, device, cancellationToken);
        try
        {
            using var optimizer = new NamedOptimizer(TrainableParameters(spec, model), spec.Training);
            using (var state = ModelIO.LoadOptimizer(
                       await _store.ReadAllBytesAsync(input.Checkpoint.Optimizer, cancellationToken),
                       input.Checkpoint.Optimizer))
                optimizer.Import(state, strict: true, source: input.Checkpoint.Optimizer);
            // bf16/fp16: a low-precision working copy trains against the fp32 master (a fresh fp16 loss scaler per
            // activity: see MixedPrecision's remarks on resuming).
            var precision = PrecisionOn(device, spec.Training.Precision);
            using var mixed = precision == TrainingPrecision.Fp32 ? null
                : new MixedPrecision(model.Module, () => ModelFactory.Create(model.Spec).Module, precision);
            long batchSeed = Seeds.Derive(spec.Seed, "batches", 0);
            int batches = data.TrainBatchCount(spec.Training.BatchSize);
            var schedule = input.Schedule.For(batches);
            var control = new ControlFlag(_store, input.RunId, ControlPollSeconds);
            var epochs = new List<EpochRecord>();
            var startBatches = new List<int>();
            var position = input.Position;
            bool stop = false, delete = false;
            string arch = model.Spec.ArchString;
            long parameters = ModelStats.Of(model.Spec).Parameters;
            while (position.Epoch < input.UntilEpoch)
            {
                int epoch = position.Epoch, start = position.Batch;
                var metrics = Trainer.TrainEpoch(model.Module, optimizer, schedule,
                    data.TrainEpoch(spec.Training.BatchSize, batchSeed, epoch).Skip(start), spec.Training.LabelSmoothing,
                    onBatch: b => Progress?.Report(new TrainingProgress(input.RunId, epoch, start + b.Batch, batches,
                        b.Loss, b.LearningRate)),
                    loss: data.Loss(spec.Training.LabelSmoothing), device: device,
                    shouldStop: () =>
                    {
                        var flag = control.Read();
                        stop |= flag.Stop;
                        delete |= flag.Delete;
                        return stop || delete || clock.Elapsed.TotalSeconds > input.MaxSeconds;
                    },
                    cancellationToken: cancellationToken, mixed: mixed);
                int done = start + metrics.Batches;
                if (done < batches)
                {
                    position = new TrainingPosition(epoch, done);
                    break;
                }
                if (spec.Training.NormRecalibrationBatches > 0)
                    Trainer.RecalibrateNorms(model.Module,
                        data.TrainEpoch(spec.Training.BatchSize, Seeds.Derive(spec.Seed, "norm-recalibration", epoch),
                            epoch).Take(spec.Training.NormRecalibrationBatches), cancellationToken, device);
                var validation = Trainer.Evaluate(model.Module, data.ValidationBatches(spec.Training.EvalBatchSize),
                    cancellationToken, data.Loss(0), device);
                var record = new EpochRecord
                {
                    Epoch = epoch, Phase = input.Phase, TrainLoss = metrics.Loss, TrainAccuracy = metrics.Accuracy,
                    ValidationLoss = validation.Loss, ValidationAccuracy = validation.Accuracy,
                    Seconds = metrics.Seconds, LearningRate = schedule.At(optimizer.Step), Arch = arch,
                    Parameters = parameters, Device = ComputeDevice.Of(model.Module).Name,
                    Precision = precision.ToString().ToLowerInvariant(),
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
            await _store.WriteAsync(checkpoint.Model, ModelIO.SaveModel(model, Carried(metadata)), null, cancellationToken);
            using (var exported = optimizer.Export())
                await _store.WriteAsync(checkpoint.Optimizer, ModelIO.SaveOptimizer(exported), null, cancellationToken);
            // Journal the epochs only once the checkpoint holding them is written: an entry means "done and kept".
            for (int i = 0; i < epochs.Count; i++)
                await Journal(input.RunId).UpsertAsync($"epoch-{epochs[i].Epoch:00000}",
                    EpochEntry(epochs[i], input.Step, startBatches[i]), cancellationToken);
            return new TrainIntervalResult(checkpoint, position, epochs, stop, delete, device.Name);
        }
        finally
        {
            model.Module.Dispose();
        }
    }

    private static JsonObject EpochEntry(EpochRecord r, int step, int startBatch) => new()
    {
        ["kind"] = "epoch", ["epoch"] = r.Epoch, ["step"] = step, ["phase"] = r.Phase, ["trainLoss"] = r.TrainLoss,
        ["trainAccuracy"] = r.TrainAccuracy, ["validationLoss"] = r.ValidationLoss,
        ["validationAccuracy"] = r.ValidationAccuracy, ["seconds"] = r.Seconds, ["learningRate"] = r.LearningRate,
        ["arch"] = r.Arch, ["parameters"] = r.Parameters, ["resumedAtBatch"] = startBatch, ["device"] = r.Device,
        ["precision"] = r.Precision,
    };
}

/// <summary>
/// The run's control flag (<c>runs/{id}/control.json</c>: stop, delete), read at most every few seconds so checking
/// it between batches costs nothing.
/// </summary>
internal sealed class ControlFlag(ScaleGrow.Storage.IArtifactStore store, string runId, double pollSeconds)
{
    private readonly Stopwatch _since = Stopwatch.StartNew();
    private (bool Stop, bool Delete) _last;
    private bool _read;

    public (bool Stop, bool Delete) Read()
    {
        if (_read && _since.Elapsed.TotalSeconds < pollSeconds) return _last;
        _since.Restart();
        _read = true;
        try
        {
            var path = RunPaths.Control(runId);
            if (store.GetInfoAsync(path).GetAwaiter().GetResult() is null) return _last = (false, false);
            var node = JsonNode.Parse(store.ReadAllBytesAsync(path).GetAwaiter().GetResult());
            return _last = ((bool?)node?["stop"] ?? false, (bool?)node?["delete"] ?? false);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or IOException)
        {
            return _last; // a flag being rewritten right now: look again next time
        }
    }
}
