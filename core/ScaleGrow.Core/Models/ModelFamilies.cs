using System.Collections.Concurrent;

namespace ScaleGrow.Models;

/// <summary>
/// The one registry of model families, keyed by spec kind and by spec type (timm's <c>register_model</c> /
/// <c>create_model</c>). Each family registers itself from its own file; registering a kind or a spec type twice throws
/// instead of silently replacing the first (timm only warns), so two families can never claim the same checkpoints.
/// </summary>
public static class ModelFamilies
{
    private static readonly ConcurrentDictionary<string, IModelFamily> ByKind = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<Type, IModelFamily> BySpecType = new();
    private static readonly object Gate = new();

    /// <summary>Adds a family; throws <see cref="InvalidOperationException"/> when its kind or spec type is taken.
    /// </summary>
    public static void Register(IModelFamily family)
    {
        ArgumentNullException.ThrowIfNull(family);
        lock (Gate)
        {
            if (ByKind.TryGetValue(family.Kind, out var taken))
                throw new InvalidOperationException(
                    $"model family kind '{family.Kind}' is already registered by {taken.GetType().Name}; " +
                    $"{family.GetType().Name} cannot register it again");
            if (BySpecType.TryGetValue(family.SpecType, out taken))
                throw new InvalidOperationException(
                    $"spec type {family.SpecType.Name} is already registered by {taken.GetType().Name} " +
                    $"(kind '{taken.Kind}'); {family.GetType().Name} cannot register it again");
            ByKind[family.Kind] = family;
            BySpecType[family.SpecType] = family;
        }
    }

    /// <summary>Every registered family, ordered by kind.</summary>
    public static IReadOnlyList<IModelFamily> All =>
        ByKind.Values.OrderBy(f => f.Kind, StringComparer.Ordinal).ToList();

    /// <summary>The family of <paramref name="spec"/>; an unregistered spec type is an
    /// <see cref="InvalidSpecException"/>.</summary>
    public static IModelFamily For(ArchitectureSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return TryFor(spec) ?? throw new InvalidSpecException($"no model family for spec kind {spec.GetType().Name}");
    }

    /// <summary>The family of <paramref name="model"/>'s spec.</summary>
    public static IModelFamily For(IScaleGrowModel model) => For(model.Spec);

    /// <summary>The family of <paramref name="spec"/>, or null when none is registered for its type.</summary>
    public static IModelFamily? TryFor(ArchitectureSpec spec) => BySpecType.GetValueOrDefault(spec.GetType());

    /// <summary>The family registered under <paramref name="kind"/>, or null.</summary>
    public static IModelFamily? ForKind(string kind) => ByKind.GetValueOrDefault(kind);

    /// <summary>The part of <paramref name="spec"/>'s family that <paramref name="activity"/> needs (growth, ONNX
    /// export); a family without it is an <see cref="InvalidSpecException"/> naming the activity.</summary>
    public static TPart Part<TPart>(ArchitectureSpec spec, string activity) where TPart : class =>
        For(spec) as TPart ??
        throw new InvalidSpecException($"{activity}: models of kind {spec.GetType().Name} do not support it");
}
