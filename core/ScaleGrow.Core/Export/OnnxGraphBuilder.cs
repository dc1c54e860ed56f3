using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using ScaleGrow.Checkpoints;
using ScaleGrow.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Export;

/// <summary>
/// Builds one ONNX graph (the protobuf types of OnnxSharp, written by Google.Protobuf): initializers named after the
/// model's parameter names (a name that shares its tensor with another — ScaleNet instances — reads the canonical
/// name, the first in ordinal order, as the checkpoint stores it), nodes named after the module that computes them.
/// A weight listed in <see cref="QuantizedWeights"/> is emitted as its packed codes, scales and zero points plus a
/// <c>DequantizeLinear</c> whose output carries the weight's name (docs/deploy.md, "Quantized models").
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly Dictionary<string, Tensor> _parameters;
    private readonly IReadOnlyDictionary<string, string> _aliases;
    private readonly HashSet<string> _emitted = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(string name, IReadOnlyDictionary<string, Tensor> stateDict, int opset,
        IReadOnlyDictionary<string, QuantizedWeight>? quantizedWeights)
    {
        var (stored, aliases) = TensorAliases.Split(stateDict);
        _parameters = new Dictionary<string, Tensor>(stored, StringComparer.Ordinal);
        _aliases = aliases;
        Opset = opset;
        QuantizedWeights = quantizedWeights ?? new Dictionary<string, QuantizedWeight>();
        Graph = new GraphProto { Name = name };
    }

    public GraphProto Graph { get; }
    public int Opset { get; }
    public IReadOnlyDictionary<string, QuantizedWeight> QuantizedWeights { get; }

    /// <summary>Parameter names the graph read (canonical names), to check that nothing was left out.</summary>
    public IReadOnlyCollection<string> Emitted => _emitted;

    /// <summary>The state dict's parameter names (canonical), for the completeness check.</summary>
    public IEnumerable<string> ParameterNames => _parameters.Keys;

    /// <summary>The value name of parameter <paramref name="name"/>, adding its initializer on first use.</summary>
    public string Parameter(string name)
    {
        string canonical = _aliases.TryGetValue(name, out var target) ? target : name;
        if (_emitted.Contains(canonical)) return canonical;
        if (!_parameters.TryGetValue(canonical, out var tensor))
            throw new InvalidOperationException($"the model has no parameter '{name}'");
        _emitted.Add(canonical);
        _names.Add(canonical);
        string layer = canonical.EndsWith(".weight", StringComparison.Ordinal) ? canonical[..^".weight".Length] : "";
        if (QuantizedWeights.TryGetValue(layer, out var quantized))
            EmitDequantized(canonical, quantized);
        else
            Graph.Initializer.Add(FloatTensor(canonical, tensor));
        return canonical;
    }

    /// <summary>True when the model has parameter <paramref name="name"/>.</summary>
    public bool HasParameter(string name) => _parameters.ContainsKey(name) || _aliases.ContainsKey(name);

    /// <summary>Adds a node; returns its single output's name (<paramref name="scope"/>/op, made unique).</summary>
    public string Node(string op, string scope, IReadOnlyList<string> inputs,
        params (string Name, object Value)[] attributes) => Nodes(op, scope, inputs, 1, attributes)[0];

    public string[] Nodes(string op, string scope, IReadOnlyList<string> inputs, int outputs,
        params (string Name, object Value)[] attributes)
    {
        string name = Unique($"{scope}/{op}");
        var node = new NodeProto { Name = name, OpType = op };
        node.Input.AddRange(inputs);
        var outs = Enumerable.Range(0, outputs).Select(i => outputs == 1 ? name + ":0" : $"{name}:{i}").ToArray();
        foreach (var o in outs) _names.Add(o);
        node.Output.AddRange(outs);
        foreach (var (attrName, value) in attributes) node.Attribute.Add(Attribute(attrName, value));
        Graph.Node.Add(node);
        return outs;
    }

    /// <summary>An int64 constant (shapes, axes, slice bounds), shared by value.</summary>
    public string Int64s(params long[] values)
    {
        string key = "i64:" + string.Join(",", values);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        string name = Unique($"const.int64[{string.Join(",", values)}]");
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        Graph.Initializer.Add(t);
        return _constants[key] = name;
    }

    /// <summary>A float32 scalar constant, shared by value.</summary>
    public string Scalar(float value)
    {
        string key = "f32:" + BitConverter.SingleToInt32Bits(value);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        string name = Unique($"const.float[{value:R}]");
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.RawData = ByteString.CopyFrom(BitConverter.GetBytes(value));
        Graph.Initializer.Add(t);
        return _constants[key] = name;
    }

    /// <summary>A float32 tensor that is not a model parameter (rotary tables), named <paramref name="name"/>.
    /// </summary>
    public string Constant(string name, Tensor tensor)
    {
        name = Unique(name);
        Graph.Initializer.Add(FloatTensor(name, tensor));
        return name;
    }

    /// <summary>Declares a graph input; each dimension is a size (long) or a symbolic name (string).</summary>
    public void Input(string name, TensorProto.Types.DataType type, params object[] dims) =>
        Graph.Input.Add(ValueInfo(name, type, dims));

    public void Output(string value, string name, TensorProto.Types.DataType type, params object[] dims)
    {
        // The last node's output becomes the graph output under its public name.
        Node("Identity", "output", [value]);
        var identity = Graph.Node[^1];
        _names.Remove(identity.Output[0]);
        identity.Output[0] = name;
        Graph.Output.Add(ValueInfo(name, type, dims));
    }

    private string Unique(string name)
    {
        if (_names.Add(name)) return name;
        for (int i = 1; ; i++)
            if (_names.Add($"{name}_{i}")) return $"{name}_{i}";
    }

    private void EmitDequantized(string weightName, QuantizedWeight q)
    {
        // (codes − zero) · scale in float32, as QuantizedCheckpoint dequantizes: the weight is reproduced bit for bit.
        var (codes, scales, zeros, axis, blockSize, order) = q.OnnxLayout();
        var codeType = q.Bits <= 4 && Opset >= 21 ? TensorProto.Types.DataType.Uint4 : TensorProto.Types.DataType.Uint8;
        string codesName = weightName + ".codes", scalesName = weightName + ".scales";
        string zerosName = weightName + ".zeros";
        Graph.Initializer.Add(IntegerTensor(codesName, codeType, codes.Values, codes.Shape));
        Graph.Initializer.Add(FloatTensor(scalesName, scales.Values, scales.Shape));
        Graph.Initializer.Add(IntegerTensor(zerosName, codeType, zeros.Values, zeros.Shape));
        var attributes = new List<(string, object)> { ("axis", (long)axis) };
        if (blockSize > 0)
        {
            if (Opset < 21)
                throw new InvalidSpecException($"{weightName}: grouped quantization (group size {q.GroupWidth}) " +
                                               "needs " +
                                               $"blocked DequantizeLinear, opset 21 or newer (asked for {Opset})");
            attributes.Add(("block_size", (long)blockSize));
        }
        string matrix = Node("DequantizeLinear", weightName, [codesName, scalesName, zerosName], attributes.ToArray());
        if (order is not null)
            matrix = Node("Gather", weightName, [matrix, Int64s(order)], ("axis", 1L));
        var reshape = Graph.Node.Count;
        string shaped = Node("Reshape", weightName, [matrix, Int64s(q.WeightShape)]);
        // The reshaped weight carries the parameter's own name, so consumers read it as they would a float weight.
        _names.Remove(shaped);
        Graph.Node[reshape].Output[0] = weightName;
    }

    private static TensorProto FloatTensor(string name, Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var values = tensor.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        return FloatTensor(name, values, tensor.shape);
    }

    private static TensorProto FloatTensor(string name, float[] values, long[] shape)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(shape);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private static TensorProto IntegerTensor(string name, TensorProto.Types.DataType type, byte[] values, long[] shape)
    {
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.AddRange(shape);
        if (type == TensorProto.Types.DataType.Uint4)
        {
            // ONNX packs 4-bit elements two to a byte, the first in the low nibble.
            var packed = new byte[(values.Length + 1) / 2];
            for (int i = 0; i < values.Length; i++) packed[i / 2] |= (byte)((values[i] & 0xF) << (i % 2 * 4));
            t.RawData = ByteString.CopyFrom(packed);
        }
        else
        {
            t.RawData = ByteString.CopyFrom(values);
        }
        return t;
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string symbol
                ? new TensorShapeProto.Types.Dimension { DimParam = symbol }
                : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static AttributeProto Attribute(string name, object value) => value switch
    {
        long i => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = i },
        float f => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = f },
        long[] ints => WithInts(
            new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints }, ints),
        string s => new AttributeProto
        { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(s) },
        _ => throw new ArgumentException($"attribute {name}: unsupported value type {value.GetType().Name}"),
    };

    private static AttributeProto WithInts(AttributeProto a, long[] values)
    {
        a.Ints.AddRange(values);
        return a;
    }
}
