using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScaleGrow.Training;

/// <summary>
/// SGD (momentum, Nesterov) and AdamW over named parameters, with state keyed by parameter name so it can be saved,
/// restored and migrated across growth steps (thesis 3.3.4 (2): a new optimizer over the grown parameter set inherits
/// the old moments by name). Semantics match PyTorch's SGD (dampening 0, coupled weight decay) and AdamW.
/// </summary>
public sealed class NamedOptimizer : IDisposable
{
    private readonly List<(string Name, Parameter Param)> _parameters;
    private readonly Dictionary<string, Dictionary<string, Tensor>> _state = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _parameterSteps = new(StringComparer.Ordinal);

    /// <param name="parameters">Named parameters; a parameter listed under several names (a ScaleNet layer instance
    /// sharing its owner's tensors) is stepped once, under the first name — with <c>named_parameters()</c> of our
    /// models that is the owner's (canonical) name. Parameters that do not require gradients are left out.</param>
    public NamedOptimizer(IEnumerable<(string Name, Parameter Param)> parameters, TrainingOptions options)
    {
        options.Validate();
        Options = options;
        var seen = new HashSet<IntPtr>();
        _parameters = parameters.Where(p => p.Param.requires_grad && seen.Add(p.Param.Handle)).ToList();
        var duplicates = _parameters.GroupBy(p => p.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0)
            throw new InvalidSpecException($"optimizer: duplicate parameter names {string.Join(", ", duplicates)}");
    }

    public TrainingOptions Options { get; }
    public OptimizerKind Kind => Options.Optimizer;
    public IReadOnlyList<(string Name, Parameter Param)> Parameters => _parameters;

    /// <summary>Optimizer steps taken (the learning-rate schedule's position).</summary>
    public long Step { get; set; }

    public static IReadOnlyList<string> SlotsOf(OptimizerKind kind) =>
        kind == OptimizerKind.Sgd ? ["momentum_buffer"] : ["exp_avg", "exp_avg_sq"];

    public void ZeroGrad()
    {
        foreach (var (_, p) in _parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            g.detach_();
            g.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient, at learning rate <paramref name="lr"/>.</summary>
    public void StepWith(double lr)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var o = Options;
        foreach (var (name, p) in _parameters)
        {
            var grad = p.grad;
            if (grad is null) continue;
            var state = StateOf(name);
            double decay = o.DecayNormsAndBiases || p.dim() > 1 ? o.WeightDecay : 0;
            if (Kind == OptimizerKind.Sgd)
            {
                var d = decay != 0 ? grad.add(p, alpha: decay) : grad;
                if (o.Momentum != 0)
                {
                    var buf = state.GetValueOrDefault("momentum_buffer") ?? NewSlot(state, "momentum_buffer", p);
                    buf.mul_(o.Momentum).add_(d);
                    d = o.Nesterov ? d.add(buf, alpha: o.Momentum) : buf;
                }
                p.add_(d, alpha: -lr);
            }
            else
            {
                long t = _parameterSteps[name] = _parameterSteps.GetValueOrDefault(name) + 1;
                var m = state.GetValueOrDefault("exp_avg") ?? NewSlot(state, "exp_avg", p);
                var v = state.GetValueOrDefault("exp_avg_sq") ?? NewSlot(state, "exp_avg_sq", p);
                if (decay != 0) p.mul_(1 - lr * decay);
                m.mul_(o.Beta1).add_(grad, alpha: 1 - o.Beta1);
                v.mul_(o.Beta2).addcmul_(grad, grad, value: 1 - o.Beta2);
                double bias1 = 1 - Math.Pow(o.Beta1, t), bias2 = 1 - Math.Pow(o.Beta2, t);
                var denom = (v / bias2).sqrt_().add_(o.Epsilon);
                p.addcdiv_(m, denom, value: -lr / bias1);
            }
        }
        Step++;
    }

    private Dictionary<string, Tensor> StateOf(string name)
    {
        if (!_state.TryGetValue(name, out var s)) _state[name] = s = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        return s;
    }

    private static Tensor NewSlot(Dictionary<string, Tensor> state, string slot, Tensor like)
    {
        var t = torch.zeros_like(like).DetachFromDisposeScope();
        state[slot] = t;
        return t;
    }

    /// <summary>A copy of the state: moments keyed <c>{parameter}::{slot}</c> and scalars as JSON.</summary>
    public NamedOptimizerState Export()
    {
        var moments = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        using (torch.no_grad())
            foreach (var (name, slots) in _state)
                foreach (var (slot, t) in slots)
                    moments[$"{name}::{slot}"] = CpuFloat32Copy(t);
        var scalars = new OptimizerScalars
        {
            Kind = Kind, Step = Step, Options = Options,
            ParameterSteps = new SortedDictionary<string, long>(_parameterSteps, StringComparer.Ordinal),
        };
        return new NamedOptimizerState(scalars, moments);
    }

    /// <summary>A moment as a checkpoint holds it: float32 on the CPU, whatever device and type it trains in.</summary>
    private static Tensor CpuFloat32Copy(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        var copy = t.detach();
        if (copy.is_floating_point() && copy.dtype != ScalarType.Float32) copy = copy.to(ScalarType.Float32);
        return copy.cpu().clone().DetachFromDisposeScope();
    }

    /// <summary>
    /// Loads state for this optimizer's parameters by name. Entries for unknown parameters are rejected
    /// (<paramref name="strict"/>) or ignored; parameters without entries start from zero state. A moment whose
    /// shape differs from its parameter is an error (use <see cref="OptimizerMigration"/> across growth).
    /// </summary>
    public void Import(NamedOptimizerState state, bool strict = true, string source = "optimizer state")
    {
        if (state.Scalars.Kind != Kind)
            throw new CheckpointFormatException($"{source}: state is for {state.Scalars.Kind}, optimizer is {Kind}");
        var byName = _parameters.ToDictionary(p => p.Name, p => p.Param, StringComparer.Ordinal);
        ClearState();
        var slots = SlotsOf(Kind);
        foreach (var (key, tensor) in state.Moments)
        {
            int sep = key.LastIndexOf("::", StringComparison.Ordinal);
            if (sep <= 0) throw new CheckpointFormatException($"{source}: moment '{key}' is not named 'parameter::slot'");
            string name = key[..sep], slot = key[(sep + 2)..];
            if (!slots.Contains(slot))
                throw new CheckpointFormatException($"{source}: unknown slot '{slot}' for {Kind} in '{key}'");
            if (!byName.TryGetValue(name, out var p))
            {
                if (strict) throw new CheckpointFormatException($"{source}: moment for unknown parameter '{name}'");
                continue;
            }
            if (!p.shape.SequenceEqual(tensor.shape))
                throw new CheckpointFormatException(
                    $"{source}: moment '{key}' has shape [{string.Join(",", tensor.shape)}], parameter has " +
                    $"[{string.Join(",", p.shape)}]");
            using (torch.no_grad())
                StateOf(name)[slot] = tensor.detach().to(p.dtype).to(p.device).clone().DetachFromDisposeScope();
        }
        Step = state.Scalars.Step;
        foreach (var (name, steps) in state.Scalars.ParameterSteps)
            if (byName.ContainsKey(name)) _parameterSteps[name] = steps;
    }

    private void ClearState()
    {
        foreach (var slots in _state.Values)
            foreach (var t in slots.Values) t.Dispose();
        _state.Clear();
        _parameterSteps.Clear();
    }

    public void Dispose() => ClearState();
}

/// <summary>The scalar part of an optimizer's state (stored as JSON beside the moments).</summary>
public sealed record OptimizerScalars
{
    public required OptimizerKind Kind { get; init; }
    public required long Step { get; init; }
    public required TrainingOptions Options { get; init; }

    /// <summary>AdamW's per-parameter step counts (bias correction restarts for parameters added by growth).</summary>
    public IReadOnlyDictionary<string, long> ParameterSteps { get; set; } = new Dictionary<string, long>();

    public string ToJson() => JsonSerializer.Serialize(this, TrainingJson.Default.OptimizerScalars);

    public static OptimizerScalars FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize(json, TrainingJson.Default.OptimizerScalars)
                   ?? throw new CheckpointFormatException($"{source}: optimizer state is null");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{source}: optimizer state is not valid JSON: {e.Message}");
        }
    }
}

/// <summary>Optimizer state detached from any optimizer: scalars and moments (owned; dispose when done).</summary>
public sealed class NamedOptimizerState(OptimizerScalars scalars, IReadOnlyDictionary<string, Tensor> moments) : IDisposable
{
    public OptimizerScalars Scalars { get; } = scalars;
    public IReadOnlyDictionary<string, Tensor> Moments { get; } = moments;

    public void Dispose()
    {
        foreach (var t in Moments.Values) t.Dispose();
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(OptimizerScalars))]
[JsonSerializable(typeof(TrainingOptions))]
internal partial class TrainingJson : JsonSerializerContext;
