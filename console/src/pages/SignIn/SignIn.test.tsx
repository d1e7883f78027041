import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { fakeGateway, TOKENS } from "../../test/fetch";

beforeEach(() => localStorage.setItem("anju.tenant", "demo"));
afterEach(() => vi.unstubAllGlobals());

const ME = {
  data: {
    me: {
      account: { id: "a1", name: "Admin", phone: null, email: "admin@demo.example.com" },
      tenant: { id: "t1", slug: "demo", name: "Demo", plan: "trial", status: "active" },
      roles: ["admin"],
      permissions: [],
      totpEnabled: true,
      totpEnrollmentRequired: false,
    },
  },
};

describe("sign-in form", () => {
  it("asks for the company first when none is chosen", async () => {
    localStorage.clear();
    render(<App initialPath="/sign-in" locale="en" />);
    expect(await screen.findByRole("heading", { name: "Choose your company" })).toBeInTheDocument();
  });

  it("requires both fields and sends nothing until they are given", async () => {
    const sent = fakeGateway(() => ({ body: {} }));
    render(<App initialPath="/sign-in" locale="en" />);
    await userEvent.setup().click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByText("Phone or email is required")).toBeInTheDocument();
    expect(screen.getByText("Password is required")).toBeInTheDocument();
    expect(sent).toHaveLength(0);
  });

  it("shows a refused password and the lock-out's wait", async () => {
    let answer: unknown = {
      data: { signIn: { __typename: "AuthError", code: "UNAUTHENTICATED", message: "wrong phone, email or password", field: null } },
    };
    const sent = fakeGateway(() => ({ body: answer }));
    render(<App initialPath="/sign-in" locale="en" />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Phone or email"), " admin@demo.example.com ");
    await user.type(screen.getByLabelText("Password"), "nope-nope");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByRole("alert")).textContent).toContain("wrong phone, email or password");
    expect(sent[0].headers["x-tenant"]).toBe("demo");
    expect(sent[0].variables).toEqual({ identifier: "admin@demo.example.com", password: "nope-nope" });
    answer = {
      data: { signIn: { __typename: "RateLimitedError", code: "RATE_LIMITED", message: "slow down", field: null, retryAfter: 42 } },
    };
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("try again in 42 s"));
  });

  it("says when the company does not exist", async () => {
    fakeGateway(() => ({ status: 404, body: { errors: [{ message: "unknown tenant 'demo'", extensions: { code: "NOT_FOUND" } }] } }));
    render(<App initialPath="/sign-in" locale="en" />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Phone or email"), "a@b.cn");
    await user.type(screen.getByLabelText("Password"), "whatever1");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByRole("alert")).textContent).toContain("unknown tenant 'demo'");
  });

  it("goes through the TOTP step to the console home", async () => {
    const sent = fakeGateway((call) => {
      if (call.operationName === "SignIn")
        return { body: { data: { signIn: { __typename: "TotpChallenge", challengeToken: "ch-1", expiresAt: "2999-01-01T00:00:00Z" } } } };
      if (call.operationName === "CompleteTotpSignIn")
        return { body: { data: { completeTotpSignIn: { __typename: "SignInPayload", tokens: TOKENS } } } };
      return { body: ME };
    });
    render(<App initialPath="/sign-in" locale="en" />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Phone or email"), "admin@demo.example.com");
    await user.type(screen.getByLabelText("Password"), "right-password");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    const code = await screen.findByLabelText("Code");
    await user.type(code, "12a");
    await user.click(screen.getByRole("button", { name: "Verify" }));
    expect(await screen.findByText("Enter the 6-digit code from your authenticator app", { selector: ".ant-form-item-explain-error" })).toBeInTheDocument();
    await user.clear(code);
    await user.type(code, "123456");
    await user.click(screen.getByRole("button", { name: "Verify" }));
    expect(await screen.findByText("Welcome, Admin")).toBeInTheDocument();
    expect(sent.map((c) => c.operationName)).toEqual(["SignIn", "CompleteTotpSignIn", "ConsoleViewer"]);
    expect(sent[1].variables).toEqual({ challengeToken: "ch-1", code: "123456" });
    expect(sent[2].headers.authorization).toBe("Bearer access-1");
  });

  it("is in Chinese by default", async () => {
    render(<App initialPath="/sign-in" />);
    expect(await screen.findByRole("heading", { name: "登录" })).toBeInTheDocument();
    expect(screen.getByLabelText("手机号或邮箱")).toBeInTheDocument();
  });
});
