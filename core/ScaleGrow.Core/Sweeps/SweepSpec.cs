using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using ScaleGrow.Runs;

namespace ScaleGrow.Sweeps;

/// <summary>One axis of a sweep: a run-spec field by its JSON path (<c>growth.depthPlacement</c>) and its values.</summary>
public sealed record SweepAxis(string Path, IReadOnlyList<JsonNode?> Values)
{
    /// <summary>The axis that names repetitions rather than configurations: trials differing only in it are averaged.</summary>
    public bool IsSeed => Path == "seed";
}

/// <summary>ASHA-style early stopping across trials (Li et al., "A System for Massively Parallel Hyperparameter
/// Tuning", 2020): at each rung (an epoch count), a trial whose validation accuracy is in the bottom
/// <see cref="BottomFraction"/> of the trials that reached that rung is stopped gracefully (fused, evaluated,
/// reported, marked pruned). Off unless a sweep asks for it: seed and ablation sweeps need every trial to finish.</summary>
public sealed record EarlyStoppingOptions
{
    /// <summary>Epoch counts at which trials are compared; default: every growth interval of the base spec up to its
    /// growth phase's end.</summary>
    public IReadOnlyList<int> Rungs { get; init; } = [];

    /// <summary>The fraction stopped at each rung: 1 − 1/η for ASHA's reduction factor η (η = 2: the bottom half).
    /// </summary>
    public double BottomFraction { get; init; } = 0.5;

    /// <summary>No trial is stopped at a rung until this many trials have reached it (the first ones have nothing to
    /// be compared with).</summary>
    public int MinTrialsAtRung { get; init; } = 3;
}

/// <summary>
/// A sweep (<c>"kind": "sweep"</c>): many growth or training runs as one durable experiment. A base run spec (or a
/// preset), axes over any of its fields by JSON path combined as a grid or sampled at random, a concurrency limit, an
/// optional budget and optional ASHA early stopping. Every trial is an ordinary run (<c>{sweep}-t003</c>); the whole
/// plan is validated — every trial's spec parsed strictly and validated — before any trial starts.
/// </summary>
public sealed record SweepSpec
{
    /// <summary>More trials than this is refused before anything starts (a grid grows as the product of its axes).</summary>
    public const int MaxTrialsLimit = 1000;

    public required JsonObject BaseJson { get; init; }
    public required IReadOnlyList<SweepAxis> Axes { get; init; }

    /// <summary><c>grid</c> (every combination, the last axis varying fastest) or <c>random</c>.</summary>
    public string Mode { get; init; } = "grid";

    /// <summary>Random mode: how many trials, and the sampler's seed.</summary>
    public int RandomTrials { get; init; }
    public long SamplerSeed { get; init; } = 1;

    /// <summary>Trials run at the same time (default 1: on one machine a trial already uses every core).</summary>
    public int Parallel { get; init; } = 1;

    /// <summary>Budget: at most this many trials are started (the rest are recorded as not started).</summary>
    public int? BudgetTrials { get; init; }

    /// <summary>Budget: after this many seconds no trial is started and running ones are stopped gracefully.</summary>
    public double? BudgetWallClockSeconds { get; init; }

    /// <summary>Equal wall time (the fixed baselines' budget of bench §3): a fixed-size (<c>train</c>) trial trains
    /// as many epochs as fit in this many seconds at its measured time per epoch. Growth trials are not changed (give
    /// them <c>growth.stopping.wallClockSeconds</c> for a wall-clock stop).</summary>
    public double? TrialSeconds { get; init; }

    public EarlyStoppingOptions? EarlyStopping { get; init; }

    /// <summary>The sweep's file, as submitted (kept beside its results).</summary>
    public required string Json { get; init; }

    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
    };

    private static readonly string[] Fields =
        ["kind", "preset", "base", "axes", "mode", "trials", "samplerSeed", "parallel", "budget", "earlyStopping"];

    /// <summary>Reads and fully validates a sweep spec (every trial's run spec included); one-line errors.</summary>
    public static SweepSpec Parse(string json, string source, int? parallelOverride = null)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(json, documentOptions: DocumentOptions) as JsonObject
                ?? throw new InvalidSpecException($"{source}: a sweep spec is a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidSpecException($"{source}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}");
        }
        foreach (var (key, _) in o)
            if (!Fields.Contains(key))
                throw new InvalidSpecException($"{source}: unknown sweep field '{key}' (known: {string.Join(", ", Fields)})");
        if ((string?)Value(o, "kind", source, JsonValueKind.String) != "sweep")
            throw new InvalidSpecException($"{source}: a sweep spec needs \"kind\": \"sweep\"");

        var baseJson = BaseOf(o, source);
        var axes = AxesOf(o, source);
        string mode = (string?)Value(o, "mode", source, JsonValueKind.String) ?? "grid";
        if (mode is not ("grid" or "random"))
            throw new InvalidSpecException($"{source}: mode must be 'grid' or 'random', got '{mode}'");
        int trials = (int?)IntValue(o, "trials", source) ?? 0;
        if (mode == "random" && trials is < 1 or > MaxTrialsLimit)
            throw new InvalidSpecException($"{source}: random mode needs trials in 1..{MaxTrialsLimit}, got {trials}");
        if (mode == "grid" && o.ContainsKey("trials"))
            throw new InvalidSpecException($"{source}: trials is for random mode; a grid runs every combination (use budget.trials to cap it)");
        long samplerSeed = IntValue(o, "samplerSeed", source) ?? 1;
        int parallel = parallelOverride ?? (int?)IntValue(o, "parallel", source) ?? 1;
        if (parallel < 1)
            throw new InvalidSpecException($"{source}: parallel (the concurrency limit) must be at least 1, got {parallel}");

        int? budgetTrials = null;
        double? budgetSeconds = null, trialSeconds = null;
        if (o["budget"] is { } budgetNode)
        {
            var budget = budgetNode as JsonObject ?? throw new InvalidSpecException($"{source}: budget must be an object");
            foreach (var (key, _) in budget)
                if (key is not ("trials" or "wallClockSeconds" or "trialSeconds"))
                    throw new InvalidSpecException($"{source}: unknown budget field '{key}' (known: trials, wallClockSeconds, trialSeconds)");
            budgetTrials = (int?)IntValue(budget, "trials", source + ": budget");
            if (budgetTrials is < 1) throw new InvalidSpecException($"{source}: budget.trials must be at least 1, got {budgetTrials}");
            budgetSeconds = NumberValue(budget, "wallClockSeconds", source + ": budget");
            if (budgetSeconds is <= 0) throw new InvalidSpecException($"{source}: budget.wallClockSeconds must be positive");
            trialSeconds = NumberValue(budget, "trialSeconds", source + ": budget");
            if (trialSeconds is <= 0) throw new InvalidSpecException($"{source}: budget.trialSeconds must be positive");
        }
        var early = EarlyStoppingOf(o, source, baseJson);

        var spec = new SweepSpec
        {
            BaseJson = baseJson, Axes = axes, Mode = mode, RandomTrials = trials, SamplerSeed = samplerSeed,
            Parallel = parallel, BudgetTrials = budgetTrials, BudgetWallClockSeconds = budgetSeconds,
            TrialSeconds = trialSeconds, EarlyStopping = early, Json = o.ToJsonString(),
        };
        spec.ValidateAxes(source);
        return spec;
    }

    /// <summary>How many trials the sweep has (grid: the product of the axes' sizes).</summary>
    public long TrialCount => Mode == "random" ? RandomTrials
        : Axes.Aggregate(1L, (n, a) => n * a.Values.Count);

    /// <summary>The axis values of trial <paramref name="index"/> (one value index per axis).</summary>
    public int[] ValueIndices(int index)
    {
        var indices = new int[Axes.Count];
        if (Mode == "random")
        {
            // One draw per axis per trial from a seeded generator, replayed up to the trial: deterministic, and the
            // same trial gets the same values however often the sweep is resumed.
            var rng = new Random(Seeds.DeriveInt(SamplerSeed, "sweep-sampler", index));
            for (int a = 0; a < Axes.Count; a++) indices[a] = rng.Next(Axes[a].Values.Count);
            return indices;
        }
        long rest = index;
        for (int a = Axes.Count - 1; a >= 0; a--)
        {
            int n = Axes[a].Values.Count;
            indices[a] = (int)(rest % n);
            rest /= n;
        }
        return indices;
    }

    /// <summary>The run spec of trial <paramref name="index"/>: the base with each axis's value set at its path.</summary>
    public RunSpec TrialSpec(int index, out IReadOnlyList<(string Path, string Value)> values)
    {
        var indices = ValueIndices(index);
        var json = (JsonObject)BaseJson.DeepClone();
        var list = new List<(string, string)>();
        for (int a = 0; a < Axes.Count; a++)
        {
            var value = Axes[a].Values[indices[a]];
            Set(json, Axes[a].Path, value);
            list.Add((Axes[a].Path, value?.ToJsonString() ?? "null"));
        }
        values = list;
        string label = string.Join(", ", list.Select(v => $"{v.Item1}={v.Item2}"));
        return RunSpec.FromJson(json.ToJsonString(), $"sweep trial {index} ({label})");
    }

    /// <summary>A trial's configuration: its axis values without the seed (trials differing only in seed repeat one).
    /// </summary>
    public static string ConfigurationOf(IEnumerable<(string Path, string Value)> values)
    {
        var parts = values.Where(v => v.Path != "seed").Select(v => $"{v.Path}={v.Value}").ToList();
        return parts.Count == 0 ? "(base)" : string.Join(", ", parts);
    }

    private void ValidateAxes(string source)
    {
        long count = TrialCount;
        if (count > MaxTrialsLimit)
            throw new InvalidSpecException($"{source}: the grid has {count:N0} trials (" +
                                           string.Join(" × ", Axes.Select(a => $"{a.Path}: {a.Values.Count}")) +
                                           $"), more than the limit of {MaxTrialsLimit:N0}; shrink an axis or use mode random");
        // Each value on its own first, so that an error names its axis and value rather than a combination.
        foreach (var axis in Axes)
            foreach (var value in axis.Values)
            {
                var json = (JsonObject)BaseJson.DeepClone();
                Set(json, axis.Path, value);
                try
                {
                    RunSpec.FromJson(json.ToJsonString(), "trial");
                }
                catch (InvalidSpecException e)
                {
                    throw new InvalidSpecException($"{source}: axis '{axis.Path}': value {Show(value)} is not valid " +
                                                   $"there: {StripSource(e.Message)}");
                }
            }
        // Then every trial as it will run (combinations can conflict, e.g. a placement that does not fit a family).
        int trials = (int)Math.Min(count, BudgetTrials ?? int.MaxValue);
        for (int i = 0; i < trials; i++)
            TrialSpec(i, out _);
    }

    private static string StripSource(string message)
    {
        if (message.StartsWith("trial: ", StringComparison.Ordinal)) message = message["trial: ".Length..];
        // The strict parser's type errors name a .NET type and a byte offset: say which kind of value was expected.
        var m = System.Text.RegularExpressions.Regex.Match(message,
            @"could not be converted to ([\w.`\[\], ]+?)\. Path: (\$[^ |]*)");
        if (!m.Success) return message;
        string type = m.Groups[1].Value;
        string expected = type switch
        {
            _ when type.Contains("Int64") || type.Contains("Int32") => "an integer",
            _ when type.Contains("Double") || type.Contains("Single") => "a number",
            _ when type.Contains("Boolean") => "true or false",
            _ when type.Contains("String") => "a string",
            _ when type.EndsWith("[]", StringComparison.Ordinal) => "a list",
            _ => $"a {type[(type.LastIndexOf('.') + 1)..]} (see the run spec's documentation)",
        };
        return $"expected {expected} at {m.Groups[2].Value[2..]}";
    }

    private static string Show(JsonNode? value)
    {
        string s = value?.ToJsonString() ?? "null";
        return s.Length > 60 ? s[..60] + "…" : s;
    }

    /// <summary>The base run spec: <c>base</c> (a run spec), or a preset by name, with <c>base</c> then a merge patch
    /// on it (<c>"preset": "quick", "base": {"data": {"trainLimit": 10000}}</c>).</summary>
    private static JsonObject BaseOf(JsonObject o, string source)
    {
        if (!o.ContainsKey("preset") && !o.ContainsKey("base"))
            throw new InvalidSpecException($"{source}: give a preset (a preset's name), a base (a run spec), or both (base then patches the preset)");
        JsonObject json;
        if (o.ContainsKey("preset"))
        {
            string name = (string?)Value(o, "preset", source, JsonValueKind.String)
                          ?? throw new InvalidSpecException($"{source}: preset must be a preset's name");
            json = JsonNode.Parse(Presets.Get(name).Spec.ToJson())!.AsObject();
        }
        else
        {
            json = new JsonObject();
        }
        if (o.ContainsKey("base"))
            Merge(json, o["base"] as JsonObject ?? throw new InvalidSpecException($"{source}: base must be a run spec (an object)"));
        var spec = RunSpec.FromJson(json.ToJsonString(), $"{source}: base");
        // Re-serialised: every field the run spec has (non-null) is present, so axes can be set into it.
        return JsonNode.Parse(spec.ToJson())!.AsObject();
    }

    private static List<SweepAxis> AxesOf(JsonObject o, string source)
    {
        var axesNode = o["axes"] as JsonObject
                       ?? throw new InvalidSpecException($"{source}: axes must be an object of field path → list of values");
        if (axesNode.Count == 0) throw new InvalidSpecException($"{source}: axes is empty: a sweep needs at least one axis");
        var axes = new List<SweepAxis>();
        foreach (var (path, valuesNode) in axesNode)
        {
            ResolvePath(path, source);
            if (valuesNode is not JsonArray values)
                throw new InvalidSpecException($"{source}: axis '{path}' must be a list of values, got {valuesNode?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}");
            if (values.Count == 0) throw new InvalidSpecException($"{source}: axis '{path}' is empty: give it at least one value");
            axes.Add(new SweepAxis(path, values.Select(v => v?.DeepClone()).ToList()));
        }
        return axes;
    }

    /// <summary>
    /// Checks a field path against the run spec's own JSON contract (the source-generated type information the strict
    /// parser uses), so that a misspelt path is one error naming it and the fields that exist there.
    /// </summary>
    public static void ResolvePath(string path, string source)
    {
        if (path == RootPath) return; // a merge patch on the whole spec: checked by parsing each trial
        var segments = path.Split('.');
        JsonTypeInfo? info = RunJson.Default.GetTypeInfo(typeof(RunSpec));
        string at = "";
        for (int i = 0; i < segments.Length; i++)
        {
            string segment = segments[i];
            if (segment.Length == 0) throw new InvalidSpecException($"{source}: axis '{path}': empty segment in the field path");
            if (info is null || info.Kind != JsonTypeInfoKind.Object || info.Properties.Count == 0)
            {
                if (info is not null && info.PolymorphismOptions is not null) return; // an architecture: checked by the parser
                throw new InvalidSpecException($"{source}: axis '{path}': '{at}' is a {Describe(info)}, it has no field '{segment}' " +
                                               "(an axis sets a whole value; give a list of whole values)");
            }
            var property = info.Properties.FirstOrDefault(p => p.Name == segment);
            if (property is null)
                throw new InvalidSpecException($"{source}: axis '{path}': unknown field '{segment}'" +
                                               (at.Length > 0 ? $" in '{at}'" : "") + $" (known: {string.Join(", ", info.Properties.Select(p => p.Name))})");
            at = at.Length == 0 ? segment : $"{at}.{segment}";
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            info = i + 1 < segments.Length ? RunJson.Default.GetTypeInfo(type) : null;
        }
    }

    private static string Describe(JsonTypeInfo? info) => info?.Kind switch
    {
        JsonTypeInfoKind.Enumerable => "list",
        JsonTypeInfoKind.Dictionary => "map",
        _ => "plain value",
    };

    /// <summary>The axis path of the whole spec: its values are merge patches on the base (e.g. one variant each).
    /// </summary>
    public const string RootPath = "$";

    /// <summary>
    /// Sets an axis value at its path. An object value at a field that holds an object is applied as a JSON merge
    /// patch (RFC 7386: its members replace those of the base, null removes one), so one axis can list variants that
    /// each change something different — an ablation table; any other value replaces the field.
    /// </summary>
    private static void Set(JsonObject json, string path, JsonNode? value)
    {
        if (path == RootPath)
        {
            if (value is not JsonObject patch) throw new InvalidSpecException($"axis '{RootPath}': its values must be objects (merge patches on the base spec)");
            Merge(json, patch);
            return;
        }
        var segments = path.Split('.');
        var node = json;
        foreach (var segment in segments[..^1])
        {
            if (node[segment] is not JsonObject child)
            {
                child = new JsonObject();
                node[segment] = child;
            }
            node = child;
        }
        if (value is null) node.Remove(segments[^1]);
        else if (value is JsonObject patch && node[segments[^1]] is JsonObject target) Merge(target, patch);
        else node[segments[^1]] = value.DeepClone();
    }

    private static void Merge(JsonObject target, JsonObject patch)
    {
        foreach (var (key, value) in patch)
        {
            if (value is null) target.Remove(key);
            else if (value is JsonObject inner && target[key] is JsonObject existing) Merge(existing, inner);
            else target[key] = value.DeepClone();
        }
    }

    private static EarlyStoppingOptions? EarlyStoppingOf(JsonObject o, string source, JsonObject baseJson)
    {
        if (o["earlyStopping"] is not { } node) return null;
        var e = node as JsonObject ?? throw new InvalidSpecException($"{source}: earlyStopping must be an object");
        string at = source + ": earlyStopping";
        foreach (var (key, _) in e)
            if (key is not ("method" or "rungs" or "bottomFraction" or "reductionFactor" or "minTrialsAtRung"))
                throw new InvalidSpecException($"{at}: unknown field '{key}' (known: method, rungs, bottomFraction, reductionFactor, minTrialsAtRung)");
        string method = (string?)Value(e, "method", at, JsonValueKind.String) ?? "asha";
        if (method == "none") return null;
        if (method != "asha") throw new InvalidSpecException($"{at}: method must be 'asha' or 'none', got '{method}'");
        double fraction = NumberValue(e, "bottomFraction", at) ?? 0.5;
        if (NumberValue(e, "reductionFactor", at) is { } eta)
        {
            if (e.ContainsKey("bottomFraction")) throw new InvalidSpecException($"{at}: give bottomFraction or reductionFactor, not both");
            if (eta <= 1) throw new InvalidSpecException($"{at}: reductionFactor must be greater than 1, got {eta}");
            fraction = 1 - 1 / eta;
        }
        if (fraction is <= 0 or >= 1) throw new InvalidSpecException($"{at}: bottomFraction must be in (0, 1), got {fraction}");
        int minTrials = (int?)IntValue(e, "minTrialsAtRung", at) ?? 3;
        if (minTrials < 2) throw new InvalidSpecException($"{at}: minTrialsAtRung must be at least 2, got {minTrials}");
        List<int> rungs;
        if (e["rungs"] is JsonArray r)
        {
            rungs = [];
            foreach (var x in r)
                rungs.Add(x is JsonValue v && v.TryGetValue(out int n) && n >= 1 ? n
                    : throw new InvalidSpecException($"{at}: rungs must be epoch counts ≥ 1, got {x?.ToJsonString() ?? "null"}"));
            if (rungs.Count == 0) throw new InvalidSpecException($"{at}: rungs is empty");
        }
        else
        {
            var growth = baseJson["growth"];
            int interval = (int?)growth?["intervalEpochs"] ?? 1, max = (int?)growth?["maxEpochs"] ?? 1;
            rungs = Enumerable.Range(1, Math.Max(1, max / interval)).Select(k => k * interval).ToList();
        }
        return new EarlyStoppingOptions
        {
            Rungs = rungs.Distinct().Order().ToList(), BottomFraction = fraction, MinTrialsAtRung = minTrials,
        };
    }

    private static JsonNode? Value(JsonObject o, string key, string source, JsonValueKind kind)
    {
        var node = o[key];
        if (node is null) return null;
        if (node.GetValueKind() != kind)
            throw new InvalidSpecException($"{source}: {key} must be a {kind.ToString().ToLowerInvariant()}, got {node.ToJsonString()}");
        return node;
    }

    private static long? IntValue(JsonObject o, string key, string source)
    {
        var node = o[key];
        if (node is null) return null;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long n) ? n
            : throw new InvalidSpecException($"{source}: {key} must be an integer, got {node.ToJsonString()}");
    }

    private static double? NumberValue(JsonObject o, string key, string source)
    {
        var node = o[key];
        if (node is null) return null;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d) && double.IsFinite(d) ? d
            : throw new InvalidSpecException($"{source}: {key} must be a number, got {node.ToJsonString()}");
    }
}
