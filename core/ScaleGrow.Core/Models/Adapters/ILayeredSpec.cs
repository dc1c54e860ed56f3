using ScaleGrow.Models;
using ScaleGrow.Models.Transformer;

namespace ScaleGrow.Models.Adapters;

/// <summary>
/// An architecture whose trunk is a list of identical-shaped layers with creation ids (the ViT/BERT encoder, the
/// Llama-style decoder): what ScaleNet's layer mapping works on, whatever the family.
/// </summary>
public interface ILayeredSpec
{
    IReadOnlyList<TransformerLayerSpec> Layers { get; }
    int NextId { get; }

    /// <summary>The width of the residual stream (what adapters read and write).</summary>
    int Width { get; }

    /// <summary>The same architecture with another layer list.</summary>
    ArchitectureSpec WithLayers(IReadOnlyList<TransformerLayerSpec> layers, int nextId);

    /// <summary>The linear maps of one layer (LoRA targets; adapter counting).</summary>
    IReadOnlyList<ProjectionShape> LayerProjections { get; }
}
