namespace ScaleGrow.Models;

/// <summary>Builds a model from its spec through the family registry (timm's <c>create_model</c>, keyed by the spec's
/// type; see <see cref="ModelFamilies"/>).</summary>
public static class ModelFactory
{
    /// <summary>Builds a freshly initialised model from its spec (validated first).</summary>
    public static IScaleGrowModel Create(ArchitectureSpec spec) =>
        (ModelFamilies.TryFor(spec) ?? throw new InvalidSpecException(
            $"no model builder for spec kind {spec.GetType().Name}")).Build(spec);
}
