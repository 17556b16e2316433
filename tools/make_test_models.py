"""Hand-built ONNX models for the serving tests (no training; written with onnx.helper).

Run from the repository root:  /usr/bin/python3 tools/make_test_models.py

  test/fixtures/models/slow_matmul/model.onnx   x f32 [N,1024] -> y = x @ W applied 1024 times, with
      W = ConstantOfShape([1024,1024], 1/1024) built at run time (so the file stays tiny). Each row
      costs 1 G multiply-adds: the tests size requests in rows to make inference slow on purpose
      (response timeouts, a worker killed mid-request).
  test/fixtures/models/embedding/model.onnx     idx i64 [N,4] -> Gather from a 10x3 table -> [N,4,3].
      An index outside 0..9 makes ONNX Runtime fail at run time: the test of "one bad item in a
      batch fails only its own request".
"""
import os
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid('', 17)]


def save(model, path):
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)
    print(path, os.path.getsize(path), 'bytes')


def slow_matmul():
    d, layers = 1024, 1024
    shape = numpy_helper.from_array(np.array([d, d], dtype=np.int64), 'w_shape')
    nodes = [helper.make_node('ConstantOfShape', ['w_shape'], ['W'],
                              value=helper.make_tensor('v', TensorProto.FLOAT, [1], [1.0 / d]))]
    prev = 'x'
    for i in range(layers):
        out = 'y' if i == layers - 1 else f'h{i}'
        nodes.append(helper.make_node('MatMul', [prev, 'W'], [out]))
        prev = out
    graph = helper.make_graph(nodes, 'slow_matmul',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', d])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['batch', d])],
                              initializer=[shape])
    save(helper.make_model(graph, opset_imports=OPSET), 'test/fixtures/models/slow_matmul/model.onnx')


def embedding():
    table = numpy_helper.from_array(np.arange(30, dtype=np.float32).reshape(10, 3), 'table')
    graph = helper.make_graph([helper.make_node('Gather', ['table', 'idx'], ['out'], axis=0)], 'embedding',
                              [helper.make_tensor_value_info('idx', TensorProto.INT64, ['batch', 4])],
                              [helper.make_tensor_value_info('out', TensorProto.FLOAT, ['batch', 4, 3])],
                              initializer=[table])
    save(helper.make_model(graph, opset_imports=OPSET), 'test/fixtures/models/embedding/model.onnx')


if __name__ == '__main__':
    slow_matmul()
    embedding()
