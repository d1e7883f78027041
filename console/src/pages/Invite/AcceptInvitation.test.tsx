import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { fakeGateway } from "../../test/fetch";

afterEach(() => vi.unstubAllGlobals());

describe("accepting an invitation", () => {
  it("says when the link is incomplete", async () => {
    render(<App initialPath="/invite?tenant=acme" locale="en" />);
    expect((await screen.findByRole("alert")).textContent).toContain("The invitation link is incomplete");
  });

  it("sends the link's token to the link's tenant and shows a refusal", async () => {
    const sent = fakeGateway(() => ({
      body: {
        data: {
          acceptInvitation: { __typename: "AuthError", code: "UNAUTHENTICATED", message: "this invitation has expired", field: "token" },
        },
      },
    }));
    render(<App initialPath="/invite?tenant=acme&token=tok%2B1" locale="en" />);
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Password"), "a-new-password");
    await user.click(screen.getByRole("button", { name: "Join" }));
    expect((await screen.findByRole("alert")).textContent).toContain("this invitation has expired");
    expect(sent[0].headers["x-tenant"]).toBe("acme");
    expect(sent[0].variables).toEqual({ token: "tok+1", password: "a-new-password", name: null });
  });
});
