"""``qdrant.Points``: point writes and reads. Every request becomes the REST request model the
same REST endpoint builds (``updates.py`` / ``requests.py`` translate, ``validate.model`` checks)
and goes to :mod:`qcluster.api.actions.points` / :mod:`qcluster.api.actions.query`; results are
rendered by ``responses.py``."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from qcluster.api.actions import collections as collection_actions
from qcluster.api.actions import points as actions
from qcluster.api.actions import query as queries
from qcluster.api.actions.validate import M, adapt, model
from qcluster.api.public_grpc import requests, responses, updates
from qcluster.api.public_grpc.edge import Services, ordering_of, rpc, timeout_of, wait_of
from qcluster.api.public_grpc.values import to_point_id
from qcluster.api.public_grpc.wire import pb, points_service_pb2_grpc
from qcluster.collection import Collection
from qcluster.collection.query import Hit
from qcluster.collection.query.matrix import Matrix
from qcluster.models.collections import CreateFieldIndexIn, VectorNameConfigIn
from qcluster.models.points import (
    DeletePayloadIn,
    DeleteVectorsIn,
    PointRequestIn,
    SelectorIn,
    SetPayloadIn,
    UpdateOperationsIn,
    UpdateVectorsIn,
    UpsertIn,
)
from qcluster.models.query import (
    CountIn,
    DiscoverIn,
    FacetIn,
    QueryGroupsIn,
    QueryIn,
    RecommendGroupsIn,
    RecommendIn,
    ScrollIn,
    SearchGroupsIn,
    SearchIn,
    SearchMatrixIn,
)
from qcluster.shards.base import UpdateResult
from qcluster.shards.operations import UpdateOperation

UPSERT: TypeAdapter[Any] = TypeAdapter(UpsertIn)


def _done(result: UpdateResult) -> pb.PointsOperationResponse:
    return pb.PointsOperationResponse(result=responses.update_result(result))


def _vector_name_body(req: pb.CreateVectorNameRequest) -> dict[str, Any]:
    kind = req.WhichOneof("vector_config")
    if kind == "dense_config":
        dense: dict[str, Any] = {
            "size": req.dense_config.size,
            "distance": pb.Distance.Name(req.dense_config.distance),
        }
        if req.dense_config.HasField("datatype"):
            dense["datatype"] = pb.Datatype.Name(req.dense_config.datatype).lower()
        return {"dense": dense}
    return {"sparse": {}} if kind == "sparse_config" else {}


class PointsService(points_service_pb2_grpc.PointsServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    def _model(self, cls: type[M], data: Any) -> M:
        """``validate.model`` within the peer's ``service.limits``."""
        return model(cls, data, self.services.limits)

    def _adapt(self, adapter: TypeAdapter[Any], data: Any) -> Any:
        return adapt(adapter, data, self.services.limits)

    def _col(self, request: Any) -> Collection:
        return self.services.toc.get(request.collection_name)

    async def _update(self, request: Any, op: UpdateOperation, body: Any) -> pb.PointsOperationResponse:
        col = self._col(request)
        return _done(await actions.apply(col, op, body, wait_of(request), ordering_of(request)))

    # -------------------------------------------------------------------------- writes
    @rpc("Points")
    async def Upsert(self, request: pb.UpsertPoints) -> pb.PointsOperationResponse:
        col = self._col(request)
        self.services.quotas.check_write()
        body = self._adapt(UPSERT, updates.upsert(request))
        return _done(await actions.upsert(col, body, wait_of(request), ordering_of(request)))

    @rpc("Points")
    async def Delete(self, request: pb.DeletePoints) -> pb.PointsOperationResponse:
        body = self._model(SelectorIn, updates.delete(request))
        return await self._update(request, actions.delete_op(body), body)

    @rpc("Points")
    async def UpdateVectors(self, request: pb.UpdatePointVectors) -> pb.PointsOperationResponse:
        col = self._col(request)
        self.services.quotas.check_write()
        body = self._model(UpdateVectorsIn, updates.update_vectors(request))
        return _done(await actions.update_vectors(col, body, wait_of(request), ordering_of(request)))

    @rpc("Points")
    async def DeleteVectors(self, request: pb.DeletePointVectors) -> pb.PointsOperationResponse:
        body = self._model(DeleteVectorsIn, updates.delete_vectors(request))
        return await self._update(request, actions.delete_vectors_op(body), body)

    @rpc("Points")
    async def SetPayload(self, request: pb.SetPayloadPoints) -> pb.PointsOperationResponse:
        body = self._model(SetPayloadIn, updates.set_payload(request))
        return await self._update(request, actions.set_payload_op(body), body)

    @rpc("Points")
    async def OverwritePayload(self, request: pb.SetPayloadPoints) -> pb.PointsOperationResponse:
        body = self._model(SetPayloadIn, updates.set_payload(request))
        return await self._update(request, actions.overwrite_payload_op(body), body)

    @rpc("Points")
    async def DeletePayload(self, request: pb.DeletePayloadPoints) -> pb.PointsOperationResponse:
        body = self._model(DeletePayloadIn, updates.delete_payload(request))
        return await self._update(request, actions.delete_payload_op(body), body)

    @rpc("Points")
    async def ClearPayload(self, request: pb.ClearPayloadPoints) -> pb.PointsOperationResponse:
        body = self._model(SelectorIn, updates.delete(request))
        return await self._update(request, actions.clear_payload_op(body), body)

    @rpc("Points")
    async def UpdateBatch(self, request: pb.UpdateBatchPoints) -> pb.UpdateBatchResponse:
        col = self._col(request)
        self.services.quotas.check_write()
        body = self._model(UpdateOperationsIn, updates.batch(request))
        results = await actions.batch_update(col, body.operations, wait_of(request), ordering_of(request))
        return pb.UpdateBatchResponse(result=[responses.update_result(r) for r in results])

    @rpc("Points")
    async def CreateFieldIndex(self, request: pb.CreateFieldIndexCollection) -> pb.PointsOperationResponse:
        body = self._model(CreateFieldIndexIn, updates.field_index(request))
        col = self._col(request)
        return _done(await actions.create_index(col, body.field_name, body.field_schema, wait_of(request)))

    @rpc("Points")
    async def DeleteFieldIndex(self, request: pb.DeleteFieldIndexCollection) -> pb.PointsOperationResponse:
        return _done(await actions.delete_index(self._col(request), request.field_name, wait_of(request)))

    @rpc("Points")
    async def CreateVectorName(self, request: pb.CreateVectorNameRequest) -> pb.PointsOperationResponse:
        body = self._model(VectorNameConfigIn, _vector_name_body(request))
        toc, name = self.services.toc, request.collection_name
        await collection_actions.create_vector(
            toc, name, request.vector_name, body, timeout_of(request), self.services.limits
        )
        return _done(UpdateResult(0, "completed"))

    @rpc("Points")
    async def DeleteVectorName(self, request: pb.DeleteVectorNameRequest) -> pb.PointsOperationResponse:
        toc, name = self.services.toc, request.collection_name
        await collection_actions.delete_vector(toc, name, request.vector_name, timeout_of(request))
        return _done(UpdateResult(0, "completed"))

    # -------------------------------------------------------------------------- reads
    @rpc("Points")
    async def Get(self, request: pb.GetPoints) -> pb.GetResponse:
        col = self._col(request)
        recs = await actions.retrieve(
            col, self._model(PointRequestIn, requests.get(request)), self.services.limits, timeout_of(request)
        )
        return pb.GetResponse(result=[responses.retrieved_point(r, col) for r in recs])

    @rpc("Points")
    async def Scroll(self, request: pb.ScrollPoints) -> pb.ScrollResponse:
        col = self._col(request)
        res = await actions.scroll(
            col, self._model(ScrollIn, requests.scroll(request)), self.services.limits, timeout_of(request)
        )
        out = pb.ScrollResponse(result=[responses.retrieved_point(r, col) for r in res.points])
        if res.next_page_offset is not None:
            out.next_page_offset.CopyFrom(to_point_id(res.next_page_offset))
        return out

    @rpc("Points")
    async def Count(self, request: pb.CountPoints) -> pb.CountResponse:
        n = await actions.count(
            self._col(request), self._model(CountIn, requests.count(request)), timeout_of(request)
        )
        return pb.CountResponse(result=pb.CountResult(count=n))

    @rpc("Points")
    async def Facet(self, request: pb.FacetCounts) -> pb.FacetResponse:
        hits = await actions.facet(
            self._col(request), self._model(FacetIn, requests.facet(request)), timeout_of(request)
        )
        return pb.FacetResponse(hits=[pb.FacetHit(value=responses.facet_value(v), count=c) for v, c in hits])

    async def _query(self, col: Collection, req: QueryIn, timeout: float | None) -> list[pb.ScoredPoint]:
        hits: list[Hit] = await queries.query(col, req, self.services.toc.get, self.services.limits, timeout)
        return responses.scored_points(hits, col)

    async def _batch(
        self, col: Collection, reqs: list[QueryIn], timeout: float | None
    ) -> list[pb.BatchResult]:
        results = await queries.query_batch(col, reqs, self.services.toc.get, self.services.limits, timeout)
        return [pb.BatchResult(result=responses.scored_points(hits, col)) for hits in results]

    async def _groups(
        self, col: Collection, req: Any, query: QueryIn, timeout: float | None
    ) -> pb.GroupsResult:
        found, lookup_col = await queries.groups(
            col,
            query,
            self.services.toc.get,
            group_by=req.group_by,
            group_size=req.group_size,
            limit=req.limit,
            with_lookup=req.with_lookup,
            bounds=self.services.limits,
            timeout=timeout,
        )
        return responses.groups_result(found, col, lookup_col)

    @rpc("Points")
    async def Query(self, request: pb.QueryPoints) -> pb.QueryResponse:
        col = self._col(request)
        return pb.QueryResponse(
            result=await self._query(
                col, self._model(QueryIn, requests.query_points(request)), timeout_of(request)
            )
        )

    @rpc("Points")
    async def QueryBatch(self, request: pb.QueryBatchPoints) -> pb.QueryBatchResponse:
        col = self._col(request)
        reqs = [self._model(QueryIn, requests.query_points(q)) for q in request.query_points]
        return pb.QueryBatchResponse(result=await self._batch(col, reqs, timeout_of(request)))

    @rpc("Points")
    async def QueryGroups(self, request: pb.QueryPointGroups) -> pb.QueryGroupsResponse:
        col = self._col(request)
        req = self._model(QueryGroupsIn, requests.query_groups(request))
        return pb.QueryGroupsResponse(result=await self._groups(col, req, req, timeout_of(request)))

    @rpc("Points")
    async def Search(self, request: pb.SearchPoints) -> pb.SearchResponse:
        col = self._col(request)
        req = queries.from_search(self._model(SearchIn, requests.search(request)))
        return pb.SearchResponse(result=await self._query(col, req, timeout_of(request)))

    @rpc("Points")
    async def SearchBatch(self, request: pb.SearchBatchPoints) -> pb.SearchBatchResponse:
        col = self._col(request)
        reqs = [queries.from_search(self._model(SearchIn, requests.search(s))) for s in request.search_points]
        return pb.SearchBatchResponse(result=await self._batch(col, reqs, timeout_of(request)))

    @rpc("Points")
    async def SearchGroups(self, request: pb.SearchPointGroups) -> pb.SearchGroupsResponse:
        col = self._col(request)
        req = self._model(SearchGroupsIn, requests.grouped(request, requests.search(request)))
        return pb.SearchGroupsResponse(
            result=await self._groups(col, req, queries.from_search(req), timeout_of(request))
        )

    @rpc("Points")
    async def Recommend(self, request: pb.RecommendPoints) -> pb.RecommendResponse:
        col = self._col(request)
        req = queries.from_recommend(self._model(RecommendIn, requests.recommend(request)))
        return pb.RecommendResponse(result=await self._query(col, req, timeout_of(request)))

    @rpc("Points")
    async def RecommendBatch(self, request: pb.RecommendBatchPoints) -> pb.RecommendBatchResponse:
        col = self._col(request)
        reqs = [
            queries.from_recommend(self._model(RecommendIn, requests.recommend(r)))
            for r in request.recommend_points
        ]
        return pb.RecommendBatchResponse(result=await self._batch(col, reqs, timeout_of(request)))

    @rpc("Points")
    async def RecommendGroups(self, request: pb.RecommendPointGroups) -> pb.RecommendGroupsResponse:
        col = self._col(request)
        req = self._model(RecommendGroupsIn, requests.grouped(request, requests.recommend(request)))
        return pb.RecommendGroupsResponse(
            result=await self._groups(col, req, queries.from_recommend(req), timeout_of(request))
        )

    @rpc("Points")
    async def Discover(self, request: pb.DiscoverPoints) -> pb.DiscoverResponse:
        col = self._col(request)
        req = queries.from_discover(self._model(DiscoverIn, requests.discover(request)))
        return pb.DiscoverResponse(result=await self._query(col, req, timeout_of(request)))

    @rpc("Points")
    async def DiscoverBatch(self, request: pb.DiscoverBatchPoints) -> pb.DiscoverBatchResponse:
        col = self._col(request)
        reqs = [
            queries.from_discover(self._model(DiscoverIn, requests.discover(d)))
            for d in request.discover_points
        ]
        return pb.DiscoverBatchResponse(result=await self._batch(col, reqs, timeout_of(request)))

    async def _matrix(self, request: pb.SearchMatrixPoints) -> Matrix:
        req = self._model(SearchMatrixIn, requests.search_matrix(request))
        return await queries.matrix(self._col(request), req, timeout_of(request))

    @rpc("Points")
    async def SearchMatrixPairs(self, request: pb.SearchMatrixPoints) -> pb.SearchMatrixPairsResponse:
        m = await self._matrix(request)
        pairs = [
            pb.SearchMatrixPair(a=to_point_id(m.ids[r]), b=to_point_id(m.ids[c]), score=s)
            for r, c, s in m.entries
        ]
        return pb.SearchMatrixPairsResponse(result=pb.SearchMatrixPairs(pairs=pairs))

    @rpc("Points")
    async def SearchMatrixOffsets(self, request: pb.SearchMatrixPoints) -> pb.SearchMatrixOffsetsResponse:
        m = await self._matrix(request)
        result = pb.SearchMatrixOffsets(
            offsets_row=[r for r, _, _ in m.entries],
            offsets_col=[c for _, c, _ in m.entries],
            scores=[s for _, _, s in m.entries],
            ids=[to_point_id(pid) for pid in m.ids],
        )
        return pb.SearchMatrixOffsetsResponse(result=result)
