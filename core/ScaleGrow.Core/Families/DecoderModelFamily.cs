using System.Runtime.CompilerServices;
using Onnx;
using ScaleGrow.Export;
using ScaleGrow.Models;
using ScaleGrow.Models.Decoder;
using static TorchSharp.torch;

namespace ScaleGrow.Families;

/// <summary>
/// The decoder family: Llama-style causal language models (<see cref="DecoderModel"/>), trained or scaled with
/// ScaleNet, never grown; they read token ids and predict the next token over the vocabulary.
/// </summary>
public sealed class DecoderModelFamily : IModelFamily, IOnnxExportableFamily
{
#pragma warning disable CA2255 // the registration line of the family, run once when the assembly loads
    [ModuleInitializer]
    internal static void Register() => ModelFamilies.Register(new DecoderModelFamily());
#pragma warning restore CA2255

    public string Kind => "decoder";
    public Type SpecType => typeof(DecoderSpec);
    public Type ModelType => typeof(DecoderModel);
    public bool IsLanguageModel => true;

    /// <summary>The decoder behind <paramref name="model"/>, or null when it is of another family (multiple-choice
    /// evaluation and the Hugging Face export need the decoder's own API).</summary>
    public static DecoderModel? AsDecoder(IScaleGrowModel model) => model as DecoderModel;

    public string SpecToJson(ArchitectureSpec spec) => ArchitectureSpec.ToDeclaredJson(Spec(spec));

    public ArchitectureSpec? SpecFromJson(string json) => ArchitectureSpec.FromDeclaredJson(json);

    public IScaleGrowModel Build(ArchitectureSpec spec) => new DecoderModel(Spec(spec));

    public ModelStats CountStats(ArchitectureSpec spec) => DecoderStatsCounter.Count(Spec(spec));

    public long ActivationsPerSample(ArchitectureSpec spec)
    {
        var d = Spec(spec);
        return checked(d.MaxPositions * (long)(d.Layers.Count + 1) * (8L * d.Hidden + 3L * d.Intermediate) +
                       d.Layers.Count * (long)d.Heads * d.MaxPositions * d.MaxPositions +
                       (long)d.MaxPositions * d.VocabSize);
    }

    public long[] InputShape(ArchitectureSpec spec) => [Spec(spec).MaxPositions];

    public bool ReadsText(ArchitectureSpec spec) => true;

    OnnxGraphOutput IOnnxExportableFamily.EmitOnnx(OnnxGraphBuilder builder, IScaleGrowModel model, string inputName,
        object batch)
    {
        var d = Spec(model.Spec);
        builder.Input(inputName, TensorProto.Types.DataType.Int64, batch, "sequence");
        string logits = DecoderOnnxGraph.Emit(builder, d, inputName);
        return new OnnxGraphOutput(InputShape(d), logits, [batch, "sequence", d.VocabSize]);
    }

    private static DecoderSpec Spec(ArchitectureSpec spec) =>
        spec as DecoderSpec ?? throw new InvalidSpecException(
            $"the decoder family was asked about a {spec.GetType().Name}");
}
